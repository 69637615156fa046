// NHS.UK frontend components (header menu, error summary focus, ...), started from a file so the
// Content-Security-Policy needs no inline script.
import { initAll } from "/vendor/nhsuk/nhsuk-frontend.min.js";
initAll();
