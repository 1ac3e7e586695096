"""The data service: products, the stock ledger and orders over a layered core."""
