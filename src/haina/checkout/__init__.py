"""Flows that span modules: cart → order, cancelling an order, expiring unpaid orders.

No tables of its own: each step is a call to a module's service, in one unit of work.
"""
