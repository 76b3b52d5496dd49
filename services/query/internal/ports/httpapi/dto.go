package httpapi

import (
	"time"

	"github.com/propalpes/companias/libs/contracts/companiajson"
	"github.com/propalpes/companias/services/query/internal/view"
)

// companiaDTO is the JSON of a company view: the company as both services
// answer it, and the view's own fields.
type companiaDTO struct {
	companiajson.Compania
	EventTime string         `json:"event_time"`
	Historial []historialDTO `json:"historial"`
}

type historialDTO struct {
	Estado  string  `json:"estado"`
	Fecha   string  `json:"fecha"`
	Version int64   `json:"version"`
	Motivo  *string `json:"motivo"`
}

func toCompaniaDTO(c view.Compania) companiaDTO {
	h := make([]historialDTO, 0, len(c.Historial))
	for _, e := range c.Historial {
		h = append(h, historialDTO{Estado: e.Estado, Fecha: companiajson.Time(e.Fecha), Version: e.Version, Motivo: e.Motivo})
	}
	return companiaDTO{
		Compania: companiajson.Compania{
			ID:                 c.ID,
			Nombre:             c.Nombre,
			Email:              c.Email,
			Identificacion:     c.Identificacion,
			Estado:             c.Estado,
			MotivoRechazo:      c.MotivoRechazo,
			FechaCreacion:      companiajson.Time(c.FechaCreacion),
			FechaActualizacion: companiajson.Time(c.FechaActualizacion),
			Version:            c.Version,
		},
		EventTime: companiajson.Time(c.EventTime),
		Historial: h,
	}
}

// listDTO is one page of GET /v1/companias; NextCursor is null on the last page.
type listDTO struct {
	Items      []companiaDTO `json:"items"`
	NextCursor *string       `json:"next_cursor"`
}

type estadisticasDTO struct {
	Total     int64            `json:"total"`
	PorEstado map[string]int64 `json:"por_estado"`
}

func toEstadisticasDTO(e view.Estadisticas) estadisticasDTO {
	m := make(map[string]int64, len(estados))
	for _, s := range estados {
		m[s] = e.PorEstado[s]
	}
	return estadisticasDTO{Total: e.Total, PorEstado: m}
}

// legacyDTO is the six-field body of the prototype's GET
// /ingestion/compania-query/{id}; fields are in the prototype's (sorted) order.
type legacyDTO struct {
	Email              string `json:"email"`
	FechaActualizacion string `json:"fecha_actualizacion"`
	FechaCreacion      string `json:"fecha_creacion"`
	ID                 string `json:"id"`
	Identificacion     string `json:"identificacion"`
	Nombre             string `json:"nombre"`
}

// legacyTimeFormat is the prototype's date format: UTC, seconds, "Z".
const legacyTimeFormat = "2006-01-02T15:04:05Z"

func toLegacyDTO(c view.Compania) legacyDTO {
	return legacyDTO{
		Email:              c.Email,
		FechaActualizacion: c.FechaActualizacion.UTC().Format(legacyTimeFormat),
		FechaCreacion:      c.FechaCreacion.UTC().Format(legacyTimeFormat),
		ID:                 c.ID,
		Identificacion:     c.Identificacion,
		Nombre:             c.Nombre,
	}
}

type partitionDTO struct {
	Partition     int        `json:"partition"`
	Committed     int64      `json:"committed"`
	HighWatermark int64      `json:"high_watermark"`
	Lag           int64      `json:"lag"`
	LastEventTime *time.Time `json:"last_event_time"`
	State         string     `json:"state"`
}

type proyeccionesDTO struct {
	Joined     bool           `json:"joined"`
	TotalLag   int64          `json:"total_lag"`
	Partitions []partitionDTO `json:"partitions"`
	Rebuild    rebuildDTO     `json:"rebuild"`
}

type rebuildDTO struct {
	State      string     `json:"state"`
	Generation string     `json:"generation"`
	Processed  int64      `json:"processed"`
	Total      int64      `json:"total"`
	Percent    float64    `json:"percent"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	Error      string     `json:"error,omitempty"`
}

func toRebuildDTO(p view.RebuildProgress) rebuildDTO {
	state := p.State
	if state == "" {
		state = "idle"
	}
	return rebuildDTO{
		State:      state,
		Generation: p.Generation,
		Processed:  p.Processed,
		Total:      p.Total,
		Percent:    percent(p),
		StartedAt:  optTime(p.StartedAt),
		FinishedAt: optTime(p.FinishedAt),
		Error:      p.Error,
	}
}

// percent is the completion of a rebuild from 0 to 100, rounded to one
// decimal: 100 once it is done, and 0 while the total is unknown.
func percent(p view.RebuildProgress) float64 {
	if p.State == "done" {
		return 100
	}
	if p.Total <= 0 {
		return 0
	}
	pct := float64(p.Processed) * 100 / float64(p.Total)
	pct = float64(int64(pct*10)) / 10
	return min(max(pct, 0), 100)
}

// optTime renders a zero time as JSON null.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func toProyeccionesDTO(parts []view.PartitionStatus, joined bool, rb view.RebuildProgress) proyeccionesDTO {
	out := proyeccionesDTO{Joined: joined, Partitions: make([]partitionDTO, 0, len(parts)), Rebuild: toRebuildDTO(rb)}
	for _, p := range parts {
		out.TotalLag += max(p.Lag, 0)
		out.Partitions = append(out.Partitions, partitionDTO{
			Partition:     p.Partition,
			Committed:     p.Committed,
			HighWatermark: p.HighWatermark,
			Lag:           p.Lag,
			LastEventTime: optTime(p.LastEventTime),
			State:         p.State,
		})
	}
	return out
}
