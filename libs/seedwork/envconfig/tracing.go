package envconfig

import (
	"fmt"
	"net/url"
	"strings"
)

// Tracing is the OpenTelemetry tracing configuration of a service. Spans
// are exported over OTLP/HTTP only when an endpoint is set.
type Tracing struct {
	// Endpoint is the full OTLP/HTTP traces URL (see
	// Parser.OTLPTracesEndpoint); "" turns tracing off.
	Endpoint string
	// ServiceName is the service.name of the spans (OTEL_SERVICE_NAME).
	ServiceName string
	// SampleRatio is the share of new traces sampled, in [0, 1]
	// (OTEL_TRACES_SAMPLER_ARG); spans with a parent, and requests that come
	// with a trace context, follow its sampled flag (parent-based sampling).
	SampleRatio float64
}

// Enabled reports whether spans are exported.
func (t Tracing) Enabled() bool { return t.Endpoint != "" }

// Tracing reads the OTEL_* variables: the endpoint as
// OTLPTracesEndpoint does, OTEL_SERVICE_NAME as Raw does (give it a
// default; with tracing on it must not be empty), and
// OTEL_TRACES_SAMPLER_ARG as Ratio does.
func (p *Parser) Tracing() Tracing {
	t := Tracing{
		Endpoint:    p.OTLPTracesEndpoint(),
		ServiceName: p.Raw("OTEL_SERVICE_NAME"),
		SampleRatio: p.Ratio("OTEL_TRACES_SAMPLER_ARG"),
	}
	if t.Enabled() && t.ServiceName == "" {
		p.Fail("OTEL_SERVICE_NAME", "is required when tracing is on")
	}
	return t
}

// OTLPTracesEndpoint returns the full OTLP/HTTP traces URL, as the
// OpenTelemetry specification defines it: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// as given, or else OTEL_EXPORTER_OTLP_ENDPOINT (a base URL) with
// "/v1/traces" appended, or "" when neither is set (tracing off). A value
// that is not an OTLPURL is a problem naming its variable, and gives "".
func (p *Parser) OTLPTracesEndpoint() string {
	if v := p.Raw("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v != "" {
		if !OTLPURL(v) {
			p.Fail("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", fmt.Sprintf("must be an http(s) URL, got %q", v))
			return ""
		}
		return v
	}
	if v := p.Raw("OTEL_EXPORTER_OTLP_ENDPOINT"); v != "" {
		if !OTLPURL(v) {
			p.Fail("OTEL_EXPORTER_OTLP_ENDPOINT", fmt.Sprintf("must be an http(s) URL, got %q", v))
			return ""
		}
		return strings.TrimSuffix(v, "/") + "/v1/traces"
	}
	return ""
}

// OTLPURL reports whether v is an absolute http(s) URL with a host and no
// query or fragment.
func OTLPURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.RawQuery == "" && u.Fragment == ""
}
