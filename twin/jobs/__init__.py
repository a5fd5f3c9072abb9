"""Durable execution of reply jobs (the replies table is the job queue)."""
