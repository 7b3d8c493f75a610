"""Durable background jobs (a transactional outbox). A job row is written in the same
transaction as the change that causes it; workers claim due jobs under a lease, run the
handler in a transaction that also removes the job, and retry failures with backoff. A
worker that dies mid-job leaves its lease to expire; another worker then runs the job, and
because the first one's transaction never committed, its effects apply once."""
