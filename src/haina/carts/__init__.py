"""Carts: what a buyer means to order, priced afresh each time it is read."""
