// Parse iCalendar text from stdin with Mozilla's ical.js (the parser inside Thunderbird) and
// print what it understood as JSON, for tests/unit/test_ics.py to compare with its inputs.
// Any parse error exits non-zero with the message on stderr.
import ICAL from "ical.js";

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on("data", (chunk) => chunks.push(chunk));
    process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    process.stdin.on("error", reject);
  });
}

// An ICAL.Time as an ISO string: the bare date for DATE values, else the instant in UTC.
function isoTime(time) {
  if (time === null || time === undefined) {
    return null;
  }
  return time.isDate ? time.toString() : time.toJSDate().toISOString();
}

function firstValue(component, name) {
  const value = component.getFirstPropertyValue(name);
  return value === null || value === undefined ? null : String(value);
}

function propertyNames(component) {
  return component.getAllProperties().map((property) => property.name);
}

const text = await readStdin();
const calendar = new ICAL.Component(ICAL.parse(text));

// Feeds written in UTC carry no VTIMEZONE; register any that appear so TZID times resolve.
for (const vtimezone of calendar.getAllSubcomponents("vtimezone")) {
  ICAL.TimezoneService.register(vtimezone);
}

const refresh = calendar.getFirstProperty("refresh-interval");
const result = {
  name: calendar.name,
  properties: propertyNames(calendar),
  components: calendar.getAllSubcomponents().map((component) => component.name),
  calendar: {
    method: firstValue(calendar, "method"),
    prodid: firstValue(calendar, "prodid"),
    version: firstValue(calendar, "version"),
    calscale: firstValue(calendar, "calscale"),
    name: firstValue(calendar, "name"),
    "x-wr-calname": firstValue(calendar, "x-wr-calname"),
    description: firstValue(calendar, "description"),
    "x-wr-caldesc": firstValue(calendar, "x-wr-caldesc"),
    "refresh-interval": refresh
      ? { value: String(refresh.getFirstValue()), type: refresh.type }
      : null,
    "x-published-ttl": firstValue(calendar, "x-published-ttl"),
  },
  events: calendar.getAllSubcomponents("vevent").map((vevent) => {
    const event = new ICAL.Event(vevent);
    return {
      properties: propertyNames(vevent),
      components: vevent.getAllSubcomponents().map((component) => component.name),
      uid: event.uid,
      sequence: event.sequence,
      status: firstValue(vevent, "status"),
      transp: firstValue(vevent, "transp"),
      summary: event.summary,
      location: event.location,
      description: event.description,
      dtstamp: isoTime(vevent.getFirstPropertyValue("dtstamp")),
      start: isoTime(event.startDate),
      end: isoTime(event.endDate),
      startIsDate: event.startDate ? event.startDate.isDate : null,
      endIsDate: event.endDate ? event.endDate.isDate : null,
    };
  }),
};

process.stdout.write(JSON.stringify(result));
