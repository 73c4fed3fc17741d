"""The tamper-evident audit log (审计日志): every write, hash-chained; ``verify`` recomputes everything."""
