"""Serving: TF Serving configs for production, and a local server speaking TF Serving's REST and gRPC APIs."""
