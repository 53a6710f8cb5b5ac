"""The webmail's views, one module per page (see STYLE.md, "HTMX")."""
