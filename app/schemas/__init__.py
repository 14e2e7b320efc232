"""Pydantic models per area: the API validates and documents with them, and the pages parse
their forms with the same input models (`app.web.forms.parse`)."""
