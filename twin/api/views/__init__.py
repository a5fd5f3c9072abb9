"""Thin HTTP views, one module per feature; each module exposes `routes: RouteTable`."""
