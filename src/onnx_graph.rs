// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Just enough of an ONNX file's graph (nodes, initializers, inputs) to see, before ONNX Runtime
//! loads it, whether its constant folding would blow up; and its metadata, which describes a
//! model served remotely. Read straight from the protobuf wire
//! format: weights (inline or external) are skipped, never read. No ONNX Runtime here.

use std::collections::HashSet;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// One node: its operator and the names of what it reads and writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    pub op_type: String,
    pub domain: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

/// The main graph of a model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Graph {
    pub nodes: Vec<Node>,
    /// Names of the initializers (weights and other constants).
    pub initializers: HashSet<String>,
    /// Names of the graph inputs, including initializers listed as inputs (overridable ones).
    pub inputs: Vec<String>,
    /// The model's `metadata_props` (key, value), in file order.
    pub metadata: Vec<(String, String)>,
}

/// Operators whose output can be far larger than their inputs: over constants, ONNX Runtime's
/// constant folding materialises every such output at load, and keeps them all until the pass
/// ends (transformers' BEiT exports compute their relative position index this way: ~1 GB a
/// layer).
const EXPANDING: [&str; 7] = [
    "Expand",
    "Tile",
    "Scatter",
    "ScatterElements",
    "ScatterND",
    "GatherElements",
    "GatherND",
];

/// Operators constant folding never evaluates.
const NON_DETERMINISTIC: [&str; 5] = [
    "RandomUniform",
    "RandomNormal",
    "RandomUniformLike",
    "RandomNormalLike",
    "Multinomial",
];

impl Graph {
    /// Reads the graph of the `.onnx` file at `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let len = file.metadata()?.len();
        parse(&mut BufReader::new(file), len)
            .with_context(|| format!("{} is not an ONNX model", path.display()))
    }

    /// The nodes ONNX Runtime's constant folding would evaluate at load: deterministic nodes
    /// whose inputs are all constants (initializers that are not also graph inputs, or outputs
    /// of such nodes), in graph order.
    pub fn constant_nodes(&self) -> Vec<&Node> {
        let inputs: HashSet<&str> = self.inputs.iter().map(String::as_str).collect();
        let mut constant: HashSet<&str> = self
            .initializers
            .iter()
            .map(String::as_str)
            .filter(|name| !inputs.contains(name))
            .collect();
        // An empty name is an omitted optional input.
        constant.insert("");
        let mut folded = vec![false; self.nodes.len()];
        // Valid ONNX lists nodes in topological order; a few passes also cover files that don't.
        for _ in 0..4 {
            let mut changed = false;
            for (node, done) in self.nodes.iter().zip(folded.iter_mut()) {
                if *done
                    || NON_DETERMINISTIC.contains(&node.op_type.as_str())
                    || !node.inputs.iter().all(|i| constant.contains(i.as_str()))
                {
                    continue;
                }
                *done = true;
                changed = true;
                constant.extend(node.outputs.iter().map(String::as_str));
            }
            if !changed {
                break;
            }
        }
        self.nodes
            .iter()
            .zip(folded)
            .filter_map(|(n, f)| f.then_some(n))
            .collect()
    }

    /// Why constant folding could need far more memory than the model, if it could: the
    /// expanding operators (scatter, gather by index, expand, tile) it would evaluate at load.
    pub fn fold_risk(&self) -> Option<String> {
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for node in self.constant_nodes() {
            if let Some(op) = EXPANDING.iter().find(|op| **op == node.op_type) {
                match counts.iter_mut().find(|(name, _)| name == op) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((op, 1)),
                }
            }
        }
        if counts.is_empty() {
            return None;
        }
        let list: Vec<String> = counts.iter().map(|(op, n)| format!("{n} {op}")).collect();
        Some(format!(
            "{} over constants ({} nodes)",
            list.join(", "),
            counts.iter().map(|(_, n)| n).sum::<usize>()
        ))
    }
}

/// Reads a model from bytes (the fuzz target's entry).
pub fn parse_bytes(bytes: &[u8]) -> Result<Graph> {
    parse(&mut std::io::Cursor::new(bytes), bytes.len() as u64)
}

/// Longest name or op type accepted; longer is taken for a damaged file.
const MAX_STRING: u64 = 1 << 20;

struct Wire<'r, R> {
    r: &'r mut R,
    pos: u64,
}

enum Field {
    Varint,
    /// A length-delimited field: its length; the caller reads or skips it.
    Bytes(u64),
    Fixed,
}

impl<R: Read + Seek> Wire<'_, R> {
    fn byte(&mut self) -> Result<u8> {
        let mut b = [0u8; 1];
        self.r.read_exact(&mut b).context("truncated")?;
        self.pos += 1;
        Ok(b[0])
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        bail!("a varint longer than 10 bytes")
    }

    /// The next field's number and kind, or `None` at `end`.
    fn field(&mut self, end: u64) -> Result<Option<(u64, Field)>> {
        if self.pos >= end {
            return Ok(None);
        }
        let key = self.varint()?;
        let (number, kind) = (key >> 3, key & 7);
        let field = match kind {
            0 => {
                self.varint()?;
                Field::Varint
            }
            1 => {
                self.skip(8, end)?;
                Field::Fixed
            }
            2 => {
                let len = self.varint()?;
                if len > end.saturating_sub(self.pos) {
                    bail!("field {number} runs past its message");
                }
                Field::Bytes(len)
            }
            5 => {
                self.skip(4, end)?;
                Field::Fixed
            }
            other => bail!("wire type {other} (field {number}) is not used by ONNX"),
        };
        Ok(Some((number, field)))
    }

    fn skip(&mut self, len: u64, end: u64) -> Result<()> {
        if len > end.saturating_sub(self.pos) {
            bail!("truncated");
        }
        self.r.seek(SeekFrom::Current(len as i64))?;
        self.pos += len;
        Ok(())
    }

    fn string(&mut self, len: u64) -> Result<String> {
        if len > MAX_STRING {
            bail!("a name of {len} bytes");
        }
        let mut buf = vec![0u8; len as usize];
        self.r.read_exact(&mut buf).context("truncated")?;
        self.pos += len;
        String::from_utf8(buf).context("a name that is not UTF-8")
    }

    /// Reads the message's fields up to `end`: `on` handles the ones it wants (reading exactly
    /// their length) and returns false for the others, which are skipped.
    fn message(
        &mut self,
        end: u64,
        mut on: impl FnMut(&mut Self, u64, u64) -> Result<bool>,
    ) -> Result<()> {
        while let Some((number, field)) = self.field(end)? {
            if let Field::Bytes(len) = field {
                let start = self.pos;
                if !on(self, number, len)? {
                    self.skip(len, end)?;
                } else if self.pos != start + len {
                    bail!("field {number} was not read to its end");
                }
            }
        }
        if self.pos != end {
            bail!("a message runs past its end");
        }
        Ok(())
    }

    /// The `name_field` string of a message of `len` bytes.
    fn name_of(&mut self, len: u64, name_field: u64) -> Result<String> {
        let mut name = String::new();
        let end = self.pos + len;
        self.message(end, |w, number, len| {
            if number != name_field {
                return Ok(false);
            }
            name = w.string(len)?;
            Ok(true)
        })?;
        Ok(name)
    }
}

fn parse<R: Read + Seek>(r: &mut R, len: u64) -> Result<Graph> {
    let mut wire = Wire { r, pos: 0 };
    let mut graph = None;
    let mut metadata = Vec::new();
    // ModelProto: graph = 7, metadata_props = 14 (StringStringEntryProto: key = 1, value = 2).
    wire.message(len, |w, number, len| {
        match number {
            7 => graph = Some(parse_graph(w, w.pos + len)?),
            14 => {
                let (mut key, mut value) = (String::new(), String::new());
                w.message(w.pos + len, |w, number, len| {
                    match number {
                        1 => key = w.string(len)?,
                        2 => value = w.string(len)?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                metadata.push((key, value));
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let mut graph: Graph = graph.context("no graph")?;
    graph.metadata = metadata;
    Ok(graph)
}

fn parse_graph<R: Read + Seek>(w: &mut Wire<'_, R>, end: u64) -> Result<Graph> {
    let mut graph = Graph::default();
    // GraphProto: node = 1, initializer = 5 (TensorProto, name = 8), input = 11 (ValueInfoProto,
    // name = 1), sparse_initializer = 15 (SparseTensorProto, values = 1: a TensorProto).
    w.message(end, |w, number, len| {
        match number {
            1 => graph.nodes.push(parse_node(w, w.pos + len)?),
            5 => {
                graph.initializers.insert(w.name_of(len, 8)?);
            }
            11 => graph.inputs.push(w.name_of(len, 1)?),
            15 => {
                let end = w.pos + len;
                w.message(end, |w, number, len| {
                    if number != 1 {
                        return Ok(false);
                    }
                    graph.initializers.insert(w.name_of(len, 8)?);
                    Ok(true)
                })?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(graph)
}

fn parse_node<R: Read + Seek>(w: &mut Wire<'_, R>, end: u64) -> Result<Node> {
    let mut node = Node::default();
    // NodeProto: input = 1, output = 2, op_type = 4, domain = 7.
    w.message(end, |w, number, len| {
        match number {
            1 => node.inputs.push(w.string(len)?),
            2 => node.outputs.push(w.string(len)?),
            4 => node.op_type = w.string(len)?,
            7 => node.domain = w.string(len)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes(number: u64, body: &[u8], out: &mut Vec<u8>) {
        varint(number << 3 | 2, out);
        varint(body.len() as u64, out);
        out.extend_from_slice(body);
    }

    fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> Vec<u8> {
        let mut n = Vec::new();
        for i in inputs {
            bytes(1, i.as_bytes(), &mut n);
        }
        for o in outputs {
            bytes(2, o.as_bytes(), &mut n);
        }
        bytes(4, op.as_bytes(), &mut n);
        n
    }

    fn tensor(name: &str) -> Vec<u8> {
        let mut t = Vec::new();
        varint(1 << 3, &mut t); // dims
        varint(3, &mut t);
        bytes(9, &[0u8; 12], &mut t); // raw_data, skipped
        bytes(8, name.as_bytes(), &mut t);
        t
    }

    fn model(graph: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        varint(1 << 3, &mut m); // ir_version
        varint(10, &mut m);
        bytes(7, graph, &mut m);
        m
    }

    fn graph(nodes: &[Vec<u8>], initializers: &[&str], inputs: &[&str]) -> Vec<u8> {
        let mut g = Vec::new();
        for n in nodes {
            bytes(1, n, &mut g);
        }
        for i in initializers {
            bytes(5, &tensor(i), &mut g);
        }
        for i in inputs {
            let mut v = Vec::new();
            bytes(1, i.as_bytes(), &mut v);
            bytes(11, &v, &mut g);
        }
        g
    }

    #[test]
    fn reads_nodes_initializers_and_inputs() {
        let g = graph(&[node("Add", &["x", "w"], &["y"])], &["w"], &["x"]);
        let parsed = parse_bytes(&model(&g)).unwrap();
        assert_eq!(parsed.nodes.len(), 1);
        assert_eq!(parsed.nodes[0].op_type, "Add");
        assert_eq!(parsed.nodes[0].inputs, ["x", "w"]);
        assert_eq!(parsed.nodes[0].outputs, ["y"]);
        assert!(parsed.initializers.contains("w"));
        assert_eq!(parsed.inputs, ["x"]);
    }

    #[test]
    fn reads_the_metadata_props() {
        let g = graph(&[node("Add", &["x", "w"], &["y"])], &["w"], &["x"]);
        let mut m = model(&g);
        for (k, v) in [
            ("id2label", "{\"0\": \"wall\"}"),
            ("image_mean", "[0.5,0.5,0.5]"),
        ] {
            let mut entry = Vec::new();
            bytes(1, k.as_bytes(), &mut entry);
            bytes(2, v.as_bytes(), &mut entry);
            bytes(14, &entry, &mut m);
        }
        let parsed = parse_bytes(&m).unwrap();
        assert_eq!(
            parsed.metadata,
            [
                ("id2label".to_string(), "{\"0\": \"wall\"}".to_string()),
                ("image_mean".to_string(), "[0.5,0.5,0.5]".to_string())
            ]
        );
    }

    #[test]
    fn constant_scatter_chains_are_a_risk_and_runtime_ones_are_not() {
        let chain = [
            node("Sub", &["a", "b"], &["d"]),
            node("ScatterElements", &["d", "i", "u"], &["s"]),
            node("GatherND", &["t", "s"], &["bias"]),
            node("Add", &["x", "bias"], &["y"]),
        ];
        let constants = graph(&chain, &["a", "b", "i", "u", "t"], &["x"]);
        let parsed = parse_bytes(&model(&constants)).unwrap();
        assert_eq!(parsed.constant_nodes().len(), 3);
        let risk = parsed.fold_risk().unwrap();
        assert!(
            risk.contains("1 ScatterElements") && risk.contains("1 GatherND"),
            "{risk}"
        );
        // The same chain fed by an overridable initializer (also a graph input) runs at every
        // run: nothing to fold.
        let overridable = graph(&chain, &["a", "b", "i", "u", "t"], &["x", "a"]);
        let parsed = parse_bytes(&model(&overridable)).unwrap();
        assert_eq!(parsed.fold_risk(), None);
        assert_eq!(parsed.constant_nodes().len(), 0);
    }

    #[test]
    fn damaged_files_are_errors_not_panics() {
        let good = model(&graph(&[node("Relu", &["x"], &["y"])], &[], &["x"]));
        for cut in 0..good.len() {
            let _ = parse_bytes(&good[..cut]);
        }
        assert!(parse_bytes(&good[..good.len() - 1]).is_err());
        assert!(parse_bytes(b"\xff\xff\xff").is_err());
        assert!(parse_bytes(b"")
            .unwrap_err()
            .to_string()
            .contains("no graph"));
    }

    #[test]
    fn the_bundled_exports_are_read() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let tiny = Graph::read(&root.join("samples/beit-tiny-ade/model.onnx")).unwrap();
        assert!(tiny.nodes.len() > 100, "{}", tiny.nodes.len());
        assert_eq!(
            tiny.fold_risk(),
            None,
            "the export builds its index at run time or folds it cheaply"
        );
        let legacy = Graph::read(&root.join("tests/fixtures/beit-tiny-legacy/model.onnx")).unwrap();
        let risk = legacy
            .fold_risk()
            .expect("transformers' own index computation");
        assert!(risk.contains("ScatterElements"), "{risk}");
    }
}
