// Package app is the application layer of the command service: the typed
// set of use cases that the HTTP and Kafka ports call. There is no dynamic
// dispatch; main builds Application with concrete handlers.
package app

import "github.com/propalpes/companias/services/command/internal/app/command"

// Application is every use case of the command service.
type Application struct {
	Commands Commands
}

// Commands are the state-changing use cases.
type Commands struct {
	CrearCompania      *command.CrearCompaniaHandler
	ActualizarCompania *command.ActualizarCompaniaHandler
	AprobarCompania    *command.AprobarCompaniaHandler
	RechazarCompania   *command.RechazarCompaniaHandler
}

// New wires the use cases around one repository, an id generator, a clock
// and the in-process event handlers run after each commit.
func New(repo command.Repository, ids command.IDGenerator, now command.Clock, after command.EventHandler) Application {
	return Application{Commands: Commands{
		CrearCompania:      command.NewCrearCompaniaHandler(repo, ids, now, after),
		ActualizarCompania: command.NewActualizarCompaniaHandler(repo, now, after),
		AprobarCompania:    command.NewAprobarCompaniaHandler(repo, now, after),
		RechazarCompania:   command.NewRechazarCompaniaHandler(repo, now, after),
	}}
}
