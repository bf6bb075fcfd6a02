"""O2O, goods meet local services: service points on the map (h3 cells), the services they
offer, fitment (which goods a point can fit), bookable slots claimed exactly, holds, bookings
and the search that shows the shops that fit. See docs/o2o.md."""
