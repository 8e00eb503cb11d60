package cluster

import (
	"bytes"
	"io"

	yaml2 "go.yaml.in/yaml/v2"
)

// docParser parses the documents of a batch as yaml2.Unmarshal parses each alone
// (FuzzParseDocuments), but through one parser where it can: setting up a parser costs
// about as much as parsing a small document. One worker owns it.
type docParser struct {
	stream bytes.Buffer // the documents that one parser reads, each after a document start
}

// parsed is a document's parse; ok is false when yaml2.Unmarshal refuses the document.
type parsed struct {
	y  interface{}
	ok bool
}

// streamMax is the largest document read in a stream: a larger one pays for its parser
// setup itself, and copying it into the stream would cost more than the setup saved.
const streamMax = 16 << 10

// parse parses each of docs into out (len(docs) long), skipping the documents skip names.
// The documents that are streamable and at most streamMax bytes are read by one yaml2.Decoder
// in a row; the others, and any the decoder refuses, alone.
func (p *docParser) parse(docs [][]byte, skip func(int) bool, out []parsed) {
	var inStream []int
	p.stream.Reset()
	for i, doc := range docs {
		if skip(i) {
			continue
		}
		explicit, ok := streamable(doc)
		if !ok || len(doc) > streamMax {
			out[i] = parseAlone(doc)
			continue
		}
		inStream = append(inStream, i)
		if !explicit {
			p.stream.WriteString("---\n")
		}
		p.stream.Write(doc)
	}
	if len(inStream) == 0 {
		return
	}
	dec := yaml2.NewDecoder(bytes.NewReader(p.stream.Bytes()))
	read := 0
	for _, i := range inStream {
		var y interface{}
		if dec.Decode(&y) != nil {
			break // the decoder stops at its first error: the rest alone
		}
		out[i] = parsed{y: y, ok: true}
		read++
	}
	if read == len(inStream) {
		var y interface{}
		if dec.Decode(&y) == io.EOF {
			return
		}
		// The stream held more documents than docs: a document was read other than alone.
		read = 0
	}
	for _, i := range inStream[read:] {
		out[i] = parseAlone(docs[i])
	}
}

// parseAlone parses one document as yaml2.Unmarshal does.
func parseAlone(doc []byte) parsed {
	var y interface{}
	err := yaml2.Unmarshal(doc, &y)
	return parsed{y: y, ok: err == nil}
}

// streamable reports whether doc reads the same in a stream of documents, after a document
// start ("---") unless it is explicit (starts with one), as alone: it ends with a line feed,
// starts in ASCII (not a byte order mark that sets another encoding), has no carriage
// return, and no other line of it starts a document, ends one or is a directive ("---",
// "...", "%"), so that it stays one document.
func streamable(doc []byte) (explicit, ok bool) {
	if len(doc) == 0 || doc[len(doc)-1] != '\n' || doc[0] >= 0x80 || bytes.IndexByte(doc, '\r') >= 0 {
		return false, false
	}
	// A document start is "---" followed by a blank or the end of the line.
	explicit = bytes.HasPrefix(doc, []byte("---")) && (len(doc) == 3 || doc[3] == ' ' || doc[3] == '\t' || doc[3] == '\n')
	for rest, first := doc, true; len(rest) > 0; first = false {
		if rest[0] == '%' || (bytes.HasPrefix(rest, []byte("---")) && !(first && explicit)) || bytes.HasPrefix(rest, []byte("...")) {
			return false, false
		}
		i := bytes.IndexByte(rest, '\n')
		rest = rest[i+1:] // doc ends with a line feed: i >= 0
	}
	return explicit, true
}
