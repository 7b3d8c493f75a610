"""Building blocks for every HTTP call orderbridge makes to a URL someone else configured:
webhook deliveries now, plug-and-play custom endpoints later. ``guard`` is the SSRF guard
(URL validation, a resolver that only hands aiohttp public addresses, and a session that
applies both to every request), with the address rules in ``addresses``; ``signing`` signs
webhook messages per the Standard Webhooks specification. Nothing here knows about orders,
stores or delivery schedules; the webhook sender composes these pieces.
"""
