// Package check validates the deployment files of the repository without a
// container engine or a cluster: docker-compose.yml (loaded with compose-go,
// every profile), deploy/*.Dockerfile, deploy/kafka (topic creation) and the
// kustomize base deploy/k8s (rendered, with its other kustomizations, by the
// kustomize Go API). Its tests cross-check every environment variable
// those files set against the variables the services actually read, parsed
// from services/*/internal/config and the README's configuration tables.
// It also parses the alerting rules and the Grafana dashboard of
// deploy/k8s/monitoring with Prometheus's own PromQL parser and rule loader,
// and checks every metric they name against the metrics the services'
// source defines.
//
// It is a module of its own, outside go.work, so that its dependencies
// (compose-go, prometheus, kustomize) never change the versions the services
// build with:
//
//	cd deploy/check && GOWORK=off go test -race ./...
//
// The package has no non-test code.
package check
