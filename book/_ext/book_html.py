"""Sphinx extension with three fixes for readers of the built book.

1. Serve MathJax from the built book itself, so that formulas render without internet.

MathJax 3 comes from the PyPI package ``django-static-mathjax`` (pinned in requirements.txt; it ships
MathJax's browser files and needs nothing else). At build time this extension copies its ``es5`` folder
(the ``tex-mml-chtml`` bundle and the components and fonts it loads) into ``_static/mathjax`` and points
Sphinx's ``mathjax_path`` there. Without the package the book falls back to the CDN copy.

2. Wrap long code lines (``static/book.css``) instead of hiding them behind a horizontal scrollbar.

3. Drop repeated inline scripts. Under jupyter-book 1.0, sphinx-thebe adds its configuration script
(``const THEBE_JS_URL = ...``) twice to every page, and the browser reports a SyntaxError on each.
"""
import os
import shutil

from sphinx.util import logging

CDN = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"
BUNDLE = "tex-mml-chtml.js"
logger = logging.getLogger(__name__)


def mathjax_folder():
    """The folder of MathJax's browser files in the installed package, or None."""
    try:
        import mathjax
    except ImportError:
        return None
    folder = os.path.join(os.path.dirname(mathjax.__file__), "static", "mathjax", "es5")
    return folder if os.path.exists(os.path.join(folder, BUNDLE)) else None


def _choose(app, config):
    if mathjax_folder():
        config.mathjax_path = f"mathjax/{BUNDLE}"
    else:
        config.mathjax_path = CDN
        logger.info("book_html: django-static-mathjax is not installed; MathJax comes from a CDN")


def _copy(app, exception):
    folder = mathjax_folder()
    if exception is None and folder and app.builder.format == "html":
        # the other combined bundles at the top level are not used: copy only ours and the components
        keep = lambda d, names: [n for n in names if d == folder and n.endswith(".js") and n != BUNDLE]
        shutil.copytree(folder, os.path.join(app.outdir, "_static", "mathjax"), ignore=keep, dirs_exist_ok=True)


def _drop_repeated_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        attributes = getattr(script, "attributes", {})
        filename = getattr(script, "filename", script) or ""  # an inline script comes as None or ""
        key = (str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"][:] = unique  # in place: later handlers (MathJax) add to this very list


def _add_css(app, config):
    config.html_static_path.append(os.path.join(os.path.dirname(__file__), "static"))
    app.add_css_file("book.css")


def setup(app):
    app.connect("config-inited", _choose)
    app.connect("config-inited", _add_css)
    app.connect("html-page-context", _drop_repeated_scripts, priority=900)  # after the handlers that add scripts
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
