package projection

// EstadoEntered exposes the event → estado table to the tests.
var EstadoEntered = estadoEntered
