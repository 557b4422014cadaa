"""The channel-neutral conversation layer: flows are written once against neutral events
(``events``) and a reply surface that declares what its channel can do (``surface``); where the
channel cannot, ``degrade`` is the one place that decides what happens instead. ``dispatch``
routes an event to its flow; ``turn`` is what a flow holds while it answers one event.

Nothing in this package imports a messenger library: each channel's adapter (e.g.
``bot.channels.telegram.conversation``) turns its updates into events and implements a surface.
"""
