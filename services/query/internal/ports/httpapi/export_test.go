package httpapi

// Waiting returns the number of read-your-writes waits running and of ids
// watched for them.
func (a *API) Waiting() (requests, ids int) { return a.waits.waiting() }
