"""Payments (CONTRACT §8): the product catalogue, orders, and the providers that take the money.

An order is priced by the server's catalogue, never by the app; a provider's notification is
verified before anything changes, and a paid order is credited exactly once, in the same
transaction as its state change.
"""
