"""The load benchmark: a seeded job, a simulated crowd that answers from known truth, an HTTP driver
that runs the crowd against a live site, and the correctness checks read back from the database.
"""
