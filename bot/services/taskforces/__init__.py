"""Crisis task forces: from one tap on an alert to a working room, one module per stage.

A crisis is committed first (``opening``: title, severity, agency, source alert, lead, detection
time and the response deadline), then it gets a room (``room``, backed by
``bot.services.rooms``), a pinned brief (``brief``), and its people are convened by direct
message (``convening``). Everything after that is a rule here — joins (``joining``), roles
(``roles``), tasks (``tasks``), updates and notes (``notes``), the deadline clock
(``deadline``), resolving (``resolve``) — and the read-only views live in ``queries``. The
shared lookups and permission checks are in ``crises``; handlers only parse and render.

Time: everything later is a ``Due`` row — deadline reminders at 50 % and 80 % to the lead, the
overdue escalation to supervisors (skipped once a statement is published), task reminders and the
debounced edit of the pinned brief.
"""
