package metrics

// BacklogSQL is the query of the Backlog collector, for EXPLAIN in tests.
const BacklogSQL = backlogSQL
