"""The scanning station's client: `warehouse client login|whoami|upload|watch|status`.

It talks to any warehouse over HTTP only and imports none of the server's code (a test checks this),
so a station needs nothing but this package and an address.
"""
