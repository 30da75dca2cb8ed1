"""A Bokeh layout as one standalone HTML page (JS inlined), in a file or in Jupyter."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from ..modes.sim.results import MissingExtra


def bokeh() -> Any:
    """The bokeh package, or MissingExtra saying how to install it."""
    try:
        import bokeh
        import bokeh.plotting  # noqa: F401
    except ImportError:
        raise MissingExtra("interactive charts need Bokeh: pip install 'planarpy[charts]'") \
            from None
    return bokeh


class Chart:
    """A finished chart: `save(path)` writes one HTML file; Jupyter shows it inline."""

    def __init__(self, layout: Any, title: str) -> None:
        self.layout, self.title = layout, title

    def html(self) -> str:
        """The whole page, BokehJS inlined: it opens with no network."""
        bokeh()
        from bokeh.embed import file_html
        from bokeh.resources import INLINE
        return file_html(self.layout, resources=INLINE, title=self.title)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        try:
            path.write_text(self.html(), encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot write the chart to {path}: {e.strerror or e}") from None
        return path

    def _repr_html_(self) -> str:
        # an iframe keeps the page's own scripts apart from the notebook's: it renders the
        # same in classic Jupyter, JupyterLab and VS Code, with no output_notebook() call
        return (f'<iframe srcdoc="{html.escape(self.html(), quote=True)}" '
                f'style="width:100%;height:{self._height()}px;border:0"></iframe>')

    def show(self) -> None:
        """Display inline in Jupyter (IPython), else open the page in a browser."""
        try:
            from IPython.display import HTML, display
        except ImportError:
            import tempfile
            import webbrowser
            f = tempfile.NamedTemporaryFile("w", suffix=".html", delete=False, encoding="utf-8")
            with f:
                f.write(self.html())
            webbrowser.open(f"file://{f.name}")
            return
        display(HTML(self._repr_html_()))

    def _height(self) -> int:
        heights = [getattr(c, "height", None) or 0 for c in _children(self.layout)]
        return sum(heights) + 60 if heights else 600


def _children(layout: Any) -> list[Any]:
    kids = getattr(layout, "children", None)
    if kids is None:
        return [layout]
    out = []
    for k in kids:
        out += _children(k[0] if isinstance(k, tuple) else k)
    return out
