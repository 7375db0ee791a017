"""The console: web pages to watch calls, read and hear them, and talk to the bot.

Served by Switchboard itself from Jinja2 templates (`templates/`) and a few
files of plain JavaScript and CSS (`static/`); no front-end build. It is on
only while `DIALOUT_API_KEY` is set, and that key is what one logs in with.

session.py    the signed session cookie, CSRF tokens, the login checks
auth.py       /console/login, /console/logout
live.py       /console: the calls in progress (server-sent events)
calls.py      /console/calls, /console/calls/{sid}: records, timeline, recording
overview.py   /console/overview: calls per hour, answers, end reasons, latency
place.py      /console/place: the dial-out form
talk.py       /console/talk: a call from the browser's microphone
pages.py, feeds.py, charts.py, timeline.py   rendering, event streams, SVG, timelines
site.py       `install`: the console's routes, static files and login redirects on an app
"""
