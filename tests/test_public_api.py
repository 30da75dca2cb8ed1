import planarpy


def test_public_surface_is_pinned():
    """The names planarpy exports are exactly these; a change here is an API change."""
    assert sorted(planarpy.__all__) == sorted([
        "Action", "AssetInstance", "Clock", "ConfigError", "DataError", "InvalidArgument",
        "LookAheadError", "Market", "Mode", "OHLCV", "Order", "OrderStatus", "OrderType",
        "PlanarError", "Position", "PositionSide", "RiskEvent", "RiskRules", "SimConfig",
        "SimResult", "Side", "State", "Strategy", "StrategyNotFound", "TimeInForce", "Trade",
        "TradingState", "UnknownSymbol", "UnsupportedAction",
        "UnsupportedMarginMode", "WallClock", "backtest", "call", "find_strategy", "load_csv",
        "missing", "__version__"])
    for name in planarpy.__all__:
        assert hasattr(planarpy, name)


def test_no_pickle_in_the_package():
    """Nothing in planarpy imports pickle: stores and traces are JSON and arrays only."""
    from pathlib import Path
    root = Path(planarpy.__file__).parent
    offenders = [p for p in root.rglob("*.py")
                 if any(line.strip().startswith(("import pickle", "from pickle"))
                        for line in p.read_text().splitlines())]
    assert offenders == []
