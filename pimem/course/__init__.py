"""The course layer: what the notebooks use.

Run mode, plots and explorers (matplotlib, ipywidgets), the notebooks' walk-through helpers, rendering and
the HTML edition, the JupyterLab launcher and working copies, student copies, class results, and labs/
(one module per lab). It may import every layer below it; nothing below imports it.
"""
