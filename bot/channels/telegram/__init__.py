"""Everything python-telegram-bot: the Notifier (``notifier``), the room administration
(``rooms``) and the conversation adapter (``conversation``: an Update becomes a neutral event of
``handlers.conversation``, a neutral reply becomes Bot API calls).

Deliberately empty: importing the package must not pull PTB into code that only wants one part.
"""
