"""The operator's billing system (BOSS) interface, CONTRACT §9: signed HTTP requests over the
same provisioning and billing services as ``lwork boss …``, and the audit trail of both."""
