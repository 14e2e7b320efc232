"""The assessment scores a nurse records: each one's column and the range it may take.

One list for the model's CHECK constraints, the API's 422s and the clinic file's columns.
The ranges are the instruments' own (DOMAIN.md, response assessment).
"""

#: (column, lowest, highest) for every score, in the order pages and files show them.
SCORE_RANGES: tuple[tuple[str, float, float], ...] = (
    ("cdasi_activity", 0, 100),
    ("cdasi_damage", 0, 32),
    ("mmt8", 0, 80),
    ("ck", 0, 100_000),
    ("ck_uln", 1, 10_000),
    ("physician_global", 0, 10),
    ("patient_global", 0, 10),
    ("pruritus", 0, 10),
    ("haq", 0, 3),
    ("extramuscular_global", 0, 10),
)

#: The score columns, in that order.
SCORES: tuple[str, ...] = tuple(name for name, _, _ in SCORE_RANGES)
