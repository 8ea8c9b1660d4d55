"""Stream processing: pure domain modules (parties, tally, rules) and the Faust agents that wire them."""
