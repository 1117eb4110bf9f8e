"""The web console at ``/console``: server-rendered pages (Jinja2 templates), a little
vanilla JavaScript and CSS shipped as package data, no build step.

- ``routes``: the routes, the session and CSRF checks, error pages;
- ``sessions``: sign-in with an access key, the session cookie, CSRF;
- ``pages``: the page handlers; changes run API operations through server/dispatch.py;
- ``views``: what the overview and a deployment page show, the actions;
- ``fleet``: the fleet report and its CSV;
- ``live``: server-sent events for the deployment page and the overview;
- ``format``: times and durations.
"""
