"""HTTP: one router per resource; each route validates, calls one function of the flow, encodes."""
