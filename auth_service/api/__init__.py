"""gRPC servicers: proto ⇄ commands and results. The only layer that imports generated code."""
