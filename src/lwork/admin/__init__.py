"""The operator's web console at ``/admin``: operator users, sign-in sessions, live calls,
call records (issue #16)."""
