import planarpy


def test_public_surface_is_pinned():
    """The names planarpy exports are exactly these; a change here is an API change."""
    assert sorted(planarpy.__all__) == sorted([
        "Action", "AssetInstance", "Clock", "ConfigError", "DataError", "InvalidArgument",
        "LookAheadError", "Market", "Mode", "OHLCV", "Order", "OrderStatus", "OrderType",
        "Param", "ParamError", "PlanarError", "Position", "PositionSide", "RiskEvent",
        "RiskRules", "SimConfig", "SimResult", "Side", "State", "Strategy", "StrategyNotFound",
        "TimeInForce", "Trade", "TradingState", "UnknownSymbol", "UnsupportedAction",
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


PACKAGES = {
    "planarpy.actions": ["Action", "Dispatch", "Handler", "Mode", "call", "supported_actions"],
    "planarpy.charts": ["Chart", "chart", "chart_trace", "heatmap", "pareto_plot",
                        "result_from_trace"],
    "planarpy.data": ["OHLCV", "align", "load_csv", "timeframe_ms"],
    "planarpy.data.sample": ["DataError", "list_samples", "sample_markets", "sample_path",
                             "trades_path"],
    "planarpy.exchanges": ["ApiKeys", "ExchangeConfig", "close_client", "exchange_config",
                           "load_keys", "open_client", "rewrite_urls"],
    "planarpy.exchanges.venues": ["Binance", "VENUES", "Venue", "venue_for"],
    "planarpy.indicators": ["Bands", "Candles", "Dmi", "Macd", "MissingTalib", "Stoch", "adx",
                            "atr", "bbands", "crossings", "dmi", "donchian", "ema", "macd",
                            "obv", "rolling_max", "rolling_min", "rolling_sum", "rsi", "sma",
                            "stddev", "stoch", "vwap", "wma"],
    "planarpy.localexchange": ["Account", "AccountSpec", "Balance", "BinanceError", "Clock",
                               "Credentials", "Faults", "Feed", "LocalExchange", "Position",
                               "TEST_KEY", "TEST_SECRET", "bundled_markets", "load_feed",
                               "local_url", "point_ccxt"],
    "planarpy.modes.live": ["EngineStopped", "LiveRun", "live_run", "start_live"],
    "planarpy.modes.paper": ["PaperRun", "PaperSession", "paper_run", "start_paper"],
    "planarpy.modes.runtime": ["EngineStopped", "EngineThread", "ExchangeClock", "RunHandle",
                               "Session", "StopReport", "Watcher"],
    "planarpy.modes.sim": ["SimConfig", "SimResult", "backtest"],
    "planarpy.optimize": ["Constraint", "Dim", "Fold", "FoldResult", "Objective",
                          "OptimizeResult", "STATS", "Space", "StorageError", "TrialError",
                          "Window", "build_space",
                          "optimize"],
    "planarpy.trace": ["EventTrace", "FORMAT", "MASK", "ReplayReport", "TraceDamageWarning",
                       "TraceError", "TraceHealth", "default_root", "follow", "is_secret_key",
                       "iter_events", "last_run", "replay_from_trace", "scrub", "trace_info",
                       "trace_path", "trace_tail"],
}


def test_package_surfaces_are_pinned():
    """Each package's __all__ is exactly this, and names things that exist."""
    import importlib
    for name, expected in PACKAGES.items():
        module = importlib.import_module(name)
        assert sorted(module.__all__) == sorted(expected), name
        for attr in module.__all__:
            assert hasattr(module, attr), f"{name}.{attr}"


def test_every_package_with_a_surface_is_pinned():
    """A package that declares __all__ is listed above, so its surface is pinned too."""
    from pathlib import Path
    root = Path(planarpy.__file__).parent
    declared = {".".join(("planarpy", *p.parent.relative_to(root).parts))
                for p in root.rglob("__init__.py") if "__all__" in p.read_text()}
    assert declared - {"planarpy"} == set(PACKAGES)
