"""liaison's core: domain rules, use cases and adapters. Imports neither Flask nor spyne."""
