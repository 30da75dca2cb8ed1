"""Interactive charts: a backtest or a recorded run, an optimisation heatmap, a Pareto plot.

Built with Bokeh (the `charts` extra), not Plotly, because:
- a standalone page inlines only the BokehJS bundles it uses (about 1.5 MB of JS here;
  plotly.js is about 4.8 MB whole), and the page needs no network: no CDN;
- panels share one time axis (pan and zoom the candles, the equity follows), and glyphs
  read columnar data, so a year of candles with thousands of fills stays responsive;
- the same object shows inline in Jupyter (`_repr_html_`) and saves as one HTML file.

Long runs: at most 2,500 candles are drawn; a longer run is drawn on the smallest standard
timeframe (15m, 1h, 4h, 8h, 1d...) that keeps it under, named on the price axis. Equity,
drawdown and indicator lines are thinned to a min/max envelope of about 8,000 points (no
peak is lost); every fill is drawn. A million 1m candles make a page of about 4 MB.

    chart(result).save("run.html")          # a SimResult (or a trace: chart_trace)
    result.heatmap("fast", "slow")          # an OptimizeResult
"""

from .backtest import Chart, chart
from .optimize import heatmap, pareto_plot
from .trace import chart_trace, result_from_trace

__all__ = ["Chart", "chart", "chart_trace", "heatmap", "pareto_plot", "result_from_trace"]
