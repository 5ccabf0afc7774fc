"""Reports: GET /report, /pages and /sites (routes), their parameters, time-zone buckets, CSV, and reads."""
