"""The trading core: markets, orders, trades, positions, state and their accounting.

Nothing here knows which mode it runs in, and nothing here imports another planarpy layer.
"""
