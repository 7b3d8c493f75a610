"""Screening: the pure decisions the processing pipeline takes on a received order before it
may become READY. ``facts`` turns the stored order document into the few values screening
looks at; ``fraud`` scores them against the store's fraud configuration and explains every
point; ``prohibited`` finds the items that may not travel on the order's route. Nothing here
touches a database, the network or a clock: the pipeline passes in the counts and times it
looked up, and records the outcome (contract §1 reasons ``fraud_detected`` and
``prohibited_goods``). See docs/screening.md.
"""
