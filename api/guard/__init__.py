"""`framegate guard`: watch the gateways' own SLO signals and trip `video-streaming` off when
they breach for long enough. Tooling: the gateway never imports this package."""
