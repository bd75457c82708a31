package idserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler returns the HTTP API:
//
//	GET  /v1/ids/{tag}?count=N          {"tag":"orders","ids":[...]}
//	POST /v1/tags/{tag}?start=S&step=P  create a tag explicitly
//	GET  /v1/snowflake?count=N          {"ids":[...]}
//	GET  /v1/snowflake/{id}             decode
//	GET  /api/segment/get/{tag}         Leaf: the bare ID as text
//	GET  /api/snowflake/get/{key}       Leaf: the bare ID as text (key ignored, as in Leaf)
//	GET  /api/snowflake/decode?snowflakeId=N  Leaf's decodeSnowflakeId
//	GET  /metrics, /healthz
//	GET, PUT /debug/chaos/clock?offset=D  only with Config.ChaosClock
//
// Errors are JSON {"error": "..."} under /v1 (400 bad input, 409 tag
// exists, 503 unavailable, 500 otherwise) and text on the Leaf endpoints
// (500 as Leaf answers, but 400 for malformed input).
func (s *Server) Handler() http.Handler {
	h := &httpAPI{
		s:        s,
		metrics:  promhttp.HandlerFor(s.gath, promhttp.HandlerOpts{}),
		obsLeafS: s.m.requests.WithLabelValues("http", "leaf_segment"),
		obsLeafF: s.m.requests.WithLabelValues("http", "leaf_snowflake"),
		obsIDs:   s.m.requests.WithLabelValues("http", "ids"),
	}
	return h
}

type httpAPI struct {
	s                          *Server
	metrics                    http.Handler
	obsLeafS, obsLeafF, obsIDs prometheus.Observer
}

func (h *httpAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if rest, ok := strings.CutPrefix(p, "/api/segment/get/"); ok {
		h.leafSegment(w, r, rest)
		return
	}
	if _, ok := strings.CutPrefix(p, "/api/snowflake/get/"); ok {
		h.leafSnowflake(w, r)
		return
	}
	if rest, ok := strings.CutPrefix(p, "/v1/ids/"); ok {
		h.ids(w, r, rest)
		return
	}
	if rest, ok := strings.CutPrefix(p, "/v1/tags/"); ok {
		h.createTag(w, r, rest)
		return
	}
	switch {
	case p == "/v1/snowflake":
		h.snowflake(w, r)
	case strings.HasPrefix(p, "/v1/snowflake/"):
		h.decode(w, r, strings.TrimPrefix(p, "/v1/snowflake/"))
	case p == "/api/snowflake/decode":
		h.leafDecode(w, r)
	case p == "/metrics":
		h.metrics.ServeHTTP(w, r)
	case p == "/healthz":
		h.healthz(w, r)
	case p == "/debug/chaos/clock" && h.s.cfg.ChaosClock != nil:
		h.s.cfg.ChaosClock.ServeHTTP(w, r)
	default:
		writeJSONError(w, http.StatusNotFound, fmt.Errorf("no such endpoint %s", p))
	}
}

func methodOK(w http.ResponseWriter, r *http.Request, method string, leaf bool) bool {
	if r.Method == method || (method == http.MethodGet && r.Method == http.MethodHead) {
		return true
	}
	w.Header().Set("Allow", method)
	err := fmt.Errorf("method %s not allowed: use %s", r.Method, method)
	if leaf {
		http.Error(w, err.Error(), http.StatusMethodNotAllowed)
	} else {
		writeJSONError(w, http.StatusMethodNotAllowed, err)
	}
	return false
}

// leafSegment is Leaf's /api/segment/get/{key}: the next ID as text.
func (h *httpAPI) leafSegment(w http.ResponseWriter, r *http.Request, tag string) {
	if !methodOK(w, r, http.MethodGet, true) {
		return
	}
	start := time.Now()
	var buf [1]Range
	rs, _, err := h.s.next(r.Context(), tag, 1, 1, false, buf[:0])
	h.s.observeHot(h.obsLeafS, "http", "leaf_segment", start, err)
	if err != nil {
		writeLeafError(w, err)
		return
	}
	writeNumber(w, rs[0].Start)
}

// leafSnowflake is Leaf's /api/snowflake/get/{key}; Leaf ignores the key.
func (h *httpAPI) leafSnowflake(w http.ResponseWriter, r *http.Request) {
	if !methodOK(w, r, http.MethodGet, true) {
		return
	}
	start := time.Now()
	var buf [1]Range
	rs, err := h.s.Snowflake(r.Context(), 1, 1, buf[:0])
	h.s.observeHot(h.obsLeafF, "http", "leaf_snowflake", start, err)
	if err != nil {
		writeLeafError(w, err)
		return
	}
	writeNumber(w, rs[0].Start)
}

func writeNumber(w http.ResponseWriter, id uint64) {
	var b [20]byte
	w.Header()["Content-Type"] = textPlain
	_, _ = w.Write(strconv.AppendUint(b[:0], id, 10))
}

var textPlain = []string{"text/plain; charset=utf-8"}

// writeLeafError answers as Leaf does, 500 with the reason, except that
// malformed input gets a 400 (Leaf clients treat any non-200 as a failure).
func writeLeafError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	if httpStatus(err) == http.StatusBadRequest {
		code = http.StatusBadRequest
	}
	http.Error(w, err.Error(), code)
}

// parseCount reads ?count=, 1 when absent.
func parseCount(r *http.Request, maxCount uint64) (uint64, error) {
	v := r.URL.Query().Get("count")
	if v == "" {
		return 1, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, invalidf("count %q is not a whole number", v)
	}
	return n, checkCount(n, maxCount)
}

type idsResponse struct {
	Tag string   `json:"tag"`
	IDs []uint64 `json:"ids"`
}

func expand(rs []Range, n uint64) []uint64 {
	ids := make([]uint64, 0, n)
	for _, r := range rs {
		for i := range r.Count {
			ids = append(ids, r.Start+i)
		}
	}
	return ids
}

func (h *httpAPI) ids(w http.ResponseWriter, r *http.Request, tag string) {
	if !methodOK(w, r, http.MethodGet, false) {
		return
	}
	start := time.Now()
	count, err := parseCount(r, h.s.cfg.MaxHTTPCount)
	var rs []Range
	if err == nil {
		var buf [4]Range
		rs, _, err = h.s.next(r.Context(), tag, count, h.s.cfg.MaxHTTPCount, false, buf[:0])
	}
	h.s.observeHot(h.obsIDs, "http", "ids", start, err)
	if err != nil {
		writeJSONError(w, httpStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, idsResponse{Tag: tag, IDs: expand(rs, count)})
}

type createTagResponse struct {
	Tag   string `json:"tag"`
	Start uint64 `json:"start"`
	Step  uint64 `json:"step"`
}

func (h *httpAPI) createTag(w http.ResponseWriter, r *http.Request, tag string) {
	if !methodOK(w, r, http.MethodPost, false) {
		return
	}
	start := time.Now()
	q := r.URL.Query()
	num := func(name string, def uint64) (uint64, error) {
		v := q.Get(name)
		if v == "" {
			return def, nil
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, invalidf("%s %q is not a whole number", name, v)
		}
		return n, nil
	}
	first, err := num("start", h.s.cfg.DefaultStart)
	var step uint64
	if err == nil {
		step, err = num("step", h.s.cfg.DefaultStep)
	}
	if err == nil && step == 0 {
		err = invalidf("step must be at least 1")
	}
	if err == nil {
		err = h.s.CreateTag(r.Context(), tag, first, step)
	}
	h.s.observe("http", "create_tag", start, err)
	if err != nil {
		writeJSONError(w, httpStatus(err), err)
		return
	}
	writeJSON(w, http.StatusCreated, createTagResponse{Tag: tag, Start: first, Step: step})
}

func (h *httpAPI) snowflake(w http.ResponseWriter, r *http.Request) {
	if !methodOK(w, r, http.MethodGet, false) {
		return
	}
	start := time.Now()
	count, err := parseCount(r, h.s.cfg.MaxHTTPCount)
	var rs []Range
	if err == nil {
		rs, err = h.s.Snowflake(r.Context(), count, h.s.cfg.MaxHTTPCount, nil)
	}
	h.s.observe("http", "snowflake", start, err)
	if err != nil {
		writeJSONError(w, httpStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, idsResponse{Tag: "snowflake", IDs: expand(rs, count)})
}

type decodeResponse struct {
	ID       uint64 `json:"id"`
	UnixMs   int64  `json:"unix_ms"`
	Time     string `json:"time"`
	Worker   uint64 `json:"worker"`
	Sequence uint64 `json:"sequence"`
}

func (h *httpAPI) decode(w http.ResponseWriter, r *http.Request, v string) {
	if !methodOK(w, r, http.MethodGet, false) {
		return
	}
	d, err := h.parseDecode(v)
	if err != nil {
		writeJSONError(w, httpStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, decodeResponse{ID: d.ID, UnixMs: d.UnixMs, Time: d.Time().Format(time.RFC3339Nano), Worker: d.Worker, Sequence: d.Sequence})
}

// leafDecode answers like Leaf's decodeSnowflakeId.
func (h *httpAPI) leafDecode(w http.ResponseWriter, r *http.Request) {
	if !methodOK(w, r, http.MethodGet, true) {
		return
	}
	d, err := h.parseDecode(r.URL.Query().Get("snowflakeId"))
	if err != nil {
		writeLeafError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"timestamp":  fmt.Sprintf("%d(%s)", d.UnixMs, d.Time().Format("2006-01-02 15:04:05.000")),
		"workerId":   strconv.FormatUint(d.Worker, 10),
		"sequenceId": strconv.FormatUint(d.Sequence, 10),
	})
}

func (h *httpAPI) parseDecode(v string) (Decoded, error) {
	if v == "" {
		return Decoded{}, invalidf("no snowflake ID given")
	}
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return Decoded{}, invalidf("%q is not a snowflake ID (a whole number)", v)
	}
	return h.s.Decode(id)
}

func (h *httpAPI) healthz(w http.ResponseWriter, _ *http.Request) {
	st := h.s.Status()
	code := http.StatusOK
	if h.s.closed.Load() || (st.LeaderGRPC == "" && !st.Leader) {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, st)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
