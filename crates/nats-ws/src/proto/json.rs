//! The client's JSON: reading `INFO`, writing `CONNECT`, and (with the `jetstream` feature)
//! the JetStream API's answers and requests (`jetstream/wire.rs`).
//!
//! The client reads and writes a few known shapes of strings, integers, booleans, arrays and
//! nested objects, so it does that itself instead of pulling a JSON library into every build
//! (`serde_json` comes in only with the `service` feature). The reader is strict about what it
//! keeps (a field of the wrong type is an error, as with nats.go's `json.Unmarshal`) and skips
//! everything else; nesting is bounded, so no input can exhaust the stack.

/// Why a JSON text was refused.
pub(crate) type JsonError = &'static str;

/// Nesting deeper than this in a skipped value is refused (nats-server nests two levels).
const MAX_DEPTH: usize = 32;

/// A cursor over a JSON text.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Where the last member name read is, as a range of `bytes`.
    key: (usize, usize),
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader {
            bytes,
            at: 0,
            key: (0, 0),
        }
    }

    fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.bytes.get(self.at) {
            if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
                self.at += 1;
            } else {
                return Some(b);
            }
        }
        None
    }

    fn expect(&mut self, byte: u8, what: JsonError) -> Result<(), JsonError> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(what)
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    /// Calls `field(key, reader)` for each member of an object; `field` must read the value.
    /// Nothing but whitespace may follow the object.
    pub(crate) fn object(
        mut self,
        field: impl FnMut(&str, &mut Self) -> Result<(), JsonError>,
    ) -> Result<(), JsonError> {
        self.document(field)
    }

    /// [`Reader::object`] keeping the reader, so that a failure can say where it was.
    pub(crate) fn document(
        &mut self,
        field: impl FnMut(&str, &mut Self) -> Result<(), JsonError>,
    ) -> Result<(), JsonError> {
        self.fields(field)?;
        match self.peek() {
            None => Ok(()),
            Some(_) => Err("trailing characters after the object"),
        }
    }

    /// Calls `field(key, reader)` for each member of the object at the cursor (which may be
    /// nested in another value), and leaves the cursor after it.
    pub(crate) fn fields(
        &mut self,
        mut field: impl FnMut(&str, &mut Self) -> Result<(), JsonError>,
    ) -> Result<(), JsonError> {
        self.list(b'{', &mut |r| {
            let key = r.key()?;
            r.expect(b':', "expected ':' after a key")?;
            field(&key, r)
        })
    }

    /// The elements of the object or array opening with `open` at the cursor, each read by
    /// `each` (for an object, from its key on); leaves the cursor after the closing bracket.
    fn list(
        &mut self,
        open: u8,
        each: &mut dyn FnMut(&mut Self) -> Result<(), JsonError>,
    ) -> Result<(), JsonError> {
        let (close, what) = if open == b'{' {
            (b'}', "expected an object")
        } else {
            (b']', "expected an array")
        };
        self.expect(open, what)?;
        if self.peek() == Some(close) {
            self.at += 1;
            return Ok(());
        }
        loop {
            each(self)?;
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b) if b == close => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err("expected ',' or the end of a list"),
            }
        }
    }

    /// A member's name, and where it is (for [`Reader::position`]).
    fn key(&mut self) -> Result<String, JsonError> {
        self.peek();
        let start = self.at + 1;
        let key = self.string()?;
        self.key = (start, self.at - 1);
        Ok(key)
    }

    /// Where the reader is: the byte offset, and the last member name it read (the field being
    /// read when a value was refused).
    #[cfg(feature = "jetstream")]
    pub(crate) fn position(&self) -> (usize, std::borrow::Cow<'a, str>) {
        let key = self.bytes.get(self.key.0..self.key.1).unwrap_or_default();
        (self.at, String::from_utf8_lossy(key))
    }

    /// `null` as `None`.
    pub(crate) fn null(&mut self) -> bool {
        self.peek() == Some(b'n') && self.literal(b"null")
    }

    pub(crate) fn bool(&mut self) -> Result<bool, JsonError> {
        self.peek();
        if self.literal(b"true") {
            Ok(true)
        } else if self.literal(b"false") {
            Ok(false)
        } else {
            Err("expected true or false")
        }
    }

    /// A non-negative integer no larger than `max`.
    pub(crate) fn unsigned(&mut self, max: u64) -> Result<u64, JsonError> {
        self.peek();
        let start = self.at;
        let mut value: u64 = 0;
        while let Some(&b) = self.bytes.get(self.at) {
            if !b.is_ascii_digit() {
                break;
            }
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(b - b'0')))
                .ok_or("integer out of range")?;
            self.at += 1;
        }
        if self.at == start {
            return Err("expected an integer");
        }
        if self.at - start > 1 && self.bytes.get(start) == Some(&b'0') {
            return Err("leading zero in a number");
        }
        if matches!(self.bytes.get(self.at), Some(b'.' | b'e' | b'E')) {
            return Err("expected an integer, not a fraction");
        }
        if value > max {
            return Err("integer out of range");
        }
        Ok(value)
    }

    /// An integer that may be negative, within `min..=max`.
    pub(crate) fn signed(&mut self, min: i64, max: i64) -> Result<i64, JsonError> {
        self.peek();
        let negative = self.bytes.get(self.at) == Some(&b'-');
        if negative {
            self.at += 1;
            // A digit right after the sign: `- 5` is not a number.
            if !self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
                return Err("expected an integer");
            }
        }
        let magnitude = self.unsigned(u64::MAX)?;
        let value = if negative {
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(magnitude).ok()
        };
        value
            .filter(|v| (min..=max).contains(v))
            .ok_or("integer out of range")
    }

    pub(crate) fn string(&mut self) -> Result<String, JsonError> {
        self.expect(b'"', "expected a string")?;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.bytes.get(self.at) else {
                return Err("unterminated string");
            };
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&escape) = self.bytes.get(self.at) else {
                        return Err("unterminated string");
                    };
                    self.at += 1;
                    let simple = match escape {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            let c = self.unicode_escape()?;
                            let mut buf = [0; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                            continue;
                        }
                        _ => return Err("bad escape in a string"),
                    };
                    out.push(simple);
                }
                0..=0x1f => return Err("control character in a string"),
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| "string is not UTF-8")
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self
            .bytes
            .get(self.at..self.at + 4)
            .ok_or("unterminated string")?;
        let mut value = 0;
        for &d in digits {
            let nibble = (d as char).to_digit(16).ok_or("bad \\u escape")?;
            value = value * 16 + nibble;
        }
        self.at += 4;
        Ok(value)
    }

    /// After `\u`: one code point, a surrogate pair taking two escapes.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let first = self.hex4()?;
        let code = if (0xd800..0xdc00).contains(&first) {
            if !self.literal(b"\\u") {
                return Err("lone surrogate in a string");
            }
            let second = self.hex4()?;
            if !(0xdc00..0xe000).contains(&second) {
                return Err("lone surrogate in a string");
            }
            0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
        } else {
            first
        };
        char::from_u32(code).ok_or("lone surrogate in a string")
    }

    /// Calls `item(reader)` for each element of an array; `item` must read the element.
    pub(crate) fn array(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<(), JsonError>,
    ) -> Result<(), JsonError> {
        self.list(b'[', &mut item)
    }

    /// An array of strings (`null` reads as empty).
    pub(crate) fn strings(&mut self) -> Result<Vec<String>, JsonError> {
        let mut out = Vec::new();
        if !self.null() {
            self.array(|r| {
                out.push(r.string()?);
                Ok(())
            })?;
        }
        Ok(out)
    }

    /// Reads past one value of any kind.
    pub(crate) fn skip(&mut self) -> Result<(), JsonError> {
        self.skip_nested(0)
    }

    fn skip_nested(&mut self, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply");
        }
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(open @ (b'{' | b'[')) => self.list(open, &mut |r| {
                if open == b'{' {
                    r.string()?;
                    r.expect(b':', "expected ':' after a key")?;
                }
                r.skip_nested(depth + 1)
            }),
            Some(b't' | b'f') => self.bool().map(drop),
            Some(b'n') if self.null() => Ok(()),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err("expected a value"),
        }
    }

    /// Any JSON number (skipped, so only its shape is checked, by JSON's grammar).
    fn number(&mut self) -> Result<(), JsonError> {
        const BAD: JsonError = "expected a number";
        if self.bytes.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        let integer = self.digits();
        if integer == 0 || integer > 1 && self.bytes.get(self.at - integer) == Some(&b'0') {
            return Err(BAD);
        }
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(BAD);
            }
        }
        if matches!(self.bytes.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.bytes.get(self.at), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(BAD);
            }
        }
        Ok(())
    }

    /// Reads past a run of decimal digits; how many there were.
    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        self.at - start
    }
}

/// Writes a JSON object, member by member.
pub(crate) struct Writer {
    out: String,
    first: bool,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Writer {
            out: String::from("{"),
            first: true,
        }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
    }

    pub(crate) fn bool(&mut self, key: &str, value: bool) {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
    }

    pub(crate) fn unsigned(&mut self, key: &str, value: u64) {
        self.key(key);
        self.out.push_str(itoa::Buffer::new().format(value));
    }

    #[cfg(feature = "jetstream")]
    pub(crate) fn signed(&mut self, key: &str, value: i64) {
        self.key(key);
        self.out.push_str(itoa::Buffer::new().format(value));
    }

    /// A string member; none at all for `None`.
    pub(crate) fn string(&mut self, key: &str, value: Option<&str>) {
        let Some(value) = value else { return };
        self.key(key);
        self.quoted(value);
    }

    /// An array of strings.
    #[cfg(feature = "jetstream")]
    pub(crate) fn strings(&mut self, key: &str, values: &[String]) {
        self.key(key);
        self.out.push('[');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.quoted(value);
        }
        self.out.push(']');
    }

    /// An array of non-negative integers.
    #[cfg(feature = "jetstream")]
    pub(crate) fn unsigneds(&mut self, key: &str, values: &[u64]) {
        self.key(key);
        self.out.push('[');
        for (i, &value) in values.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(itoa::Buffer::new().format(value));
        }
        self.out.push(']');
    }

    /// An object member, its own members written by `members`.
    #[cfg(feature = "jetstream")]
    pub(crate) fn object(&mut self, key: &str, members: impl FnOnce(&mut Self)) {
        self.key(key);
        self.out.push('{');
        self.first = true;
        members(self);
        self.out.push('}');
        self.first = false;
    }

    fn quoted(&mut self, value: &str) {
        self.out.push('"');
        for c in value.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                '\t' => self.out.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    self.out.push_str("\\u00");
                    self.out.push(HEX[(c as usize) >> 4] as char);
                    self.out.push(HEX[(c as usize) & 0xf] as char);
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }

    pub(crate) fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings_of(json: &str) -> Result<Vec<(String, String)>, JsonError> {
        let mut out = Vec::new();
        Reader::new(json.as_bytes()).object(|key, r| {
            out.push((key.to_owned(), r.string()?));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn strings_unescape_like_json() {
        let got = strings_of(r#"{"a":"x\"y\\z\/\n\t\u00e9\ud83d\ude00","b":"plain é"}"#).unwrap();
        assert_eq!(got[0].1, "x\"y\\z/\n\té😀");
        assert_eq!(got[1].1, "plain é");
        for bad in [
            r#"{"a":"\ud83d"}"#,
            r#"{"a":"\ude00"}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12"}"#,
            "{\"a\":\"raw\ncontrol\"}",
            r#"{"a":"open"#,
            "{\"a\":\"\u{0}\"}",
        ] {
            assert!(strings_of(bad).is_err(), "{bad}");
        }
        assert!(Reader::new(b"{\"a\":\"\xff\"}")
            .object(|_, r| r.string().map(drop))
            .is_err());
    }

    #[test]
    fn integers_are_checked_for_range_and_shape() {
        let read = |json: &str, max: u64| {
            let mut got = None;
            Reader::new(json.as_bytes())
                .object(|_, r| {
                    got = Some(r.unsigned(max)?);
                    Ok(())
                })
                .map(|()| got.unwrap())
        };
        assert_eq!(read(r#"{"n": 1048576 }"#, u64::MAX), Ok(1048576));
        assert_eq!(
            read(r#"{"n":18446744073709551615}"#, u64::MAX),
            Ok(u64::MAX)
        );
        assert!(read(r#"{"n":18446744073709551616}"#, u64::MAX).is_err());
        assert!(read(r#"{"n":70000}"#, u16::MAX.into()).is_err());
        assert!(read(r#"{"n":1.5}"#, u64::MAX).is_err());
        assert!(read(r#"{"n":-1}"#, u64::MAX).is_err());
        assert!(read(r#"{"n":"1"}"#, u64::MAX).is_err());
        let signed = |json: &str| {
            let mut got = None;
            Reader::new(json.as_bytes())
                .object(|_, r| {
                    got = Some(r.signed(i8::MIN.into(), i8::MAX.into())?);
                    Ok(())
                })
                .map(|()| got.unwrap())
        };
        assert_eq!(signed(r#"{"p":-128}"#), Ok(-128));
        assert_eq!(signed(r#"{"p":1}"#), Ok(1));
        assert!(signed(r#"{"p":128}"#).is_err());
        assert!(signed(r#"{"p":-}"#).is_err());
        assert!(signed(r#"{"p":- 5}"#).is_err());
        assert!(signed(r#"{"p":-05}"#).is_err());
        assert_eq!(signed(r#"{"p":-0}"#), Ok(0));
        assert!(read(r#"{"n":007}"#, u64::MAX).is_err());
        assert_eq!(read(r#"{"n":0}"#, u64::MAX), Ok(0));
    }

    #[test]
    fn unknown_values_of_every_kind_are_skipped_and_nesting_is_bounded() {
        let json = r#" { "a" : {"x":[1,-2.5e3,{"y":null},0,-0.0,1E+2,7e-1],"z":{}} , "b":[], "c":true,
            "d":false, "e":null, "f":"s", "g":-0.1E+2, "k":"kept" } "#;
        let mut kept = None;
        Reader::new(json.as_bytes())
            .object(|key, r| {
                if key == "k" {
                    kept = Some(r.string()?);
                    Ok(())
                } else {
                    r.skip()
                }
            })
            .unwrap();
        assert_eq!(kept.as_deref(), Some("kept"));

        let deep = format!(r#"{{"a":{}{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(
            Reader::new(deep.as_bytes()).object(|_, r| r.skip()),
            Err("nested too deeply")
        );
        for bad in [
            "",
            "[]",
            "{",
            r#"{"a"}"#,
            r#"{"a":}"#,
            r#"{"a":1,}"#,
            r#"{"a":1 "b":2}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":{"b"}}"#,
            r#"{"a":nul}"#,
            r#"{"a":-}"#,
            r#"{} x"#,
            r#"{"a":tru}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":1e+}"#,
            r#"{"a":--1}"#,
            r#"{"a":1-2}"#,
            r#"{"a":- 1}"#,
            r#"{"a":+1}"#,
        ] {
            assert!(
                Reader::new(bad.as_bytes()).object(|_, r| r.skip()).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn arrays_of_strings_and_nulls() {
        let mut got = Vec::new();
        Reader::new(br#"{"a":["x", "y"],"b":[],"c":null,"d":"solo"}"#)
            .object(|key, r| {
                if key == "d" {
                    got.push(vec![r.string()?]);
                } else {
                    got.push(r.strings()?);
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(got, [vec!["x", "y"], vec![], vec![], vec!["solo"]]);
        assert!(Reader::new(br#"{"a":[1]}"#)
            .object(|_, r| r.strings().map(drop))
            .is_err());
    }

    #[test]
    fn written_objects_read_back_with_serde_json() {
        let mut w = Writer::new();
        w.bool("verbose", false);
        w.unsigned("protocol", 1);
        w.string("name", Some("tab \"1\"\\\n\u{1}é😀"));
        w.string("user", None);
        let text = w.finish();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"verbose": false, "protocol": 1, "name": "tab \"1\"\\\n\u{1}é😀"})
        );
        assert_eq!(Writer::new().finish(), "{}");
    }

    #[cfg(feature = "jetstream")]
    #[test]
    fn nested_objects_and_arrays_are_written_in_place() {
        let mut w = Writer::new();
        w.string("a", Some("x"));
        w.object("o", |w| {
            w.signed("n", -3);
            w.object("inner", |_| {});
            w.strings("s", &["p".into(), "q\"".into()]);
        });
        w.unsigneds("u", &[1, u64::MAX]);
        w.bool("after", true);
        assert_eq!(
            w.finish(),
            r#"{"a":"x","o":{"n":-3,"inner":{},"s":["p","q\""]},"u":[1,18446744073709551615],"after":true}"#
        );
    }

    /// The reader accepts what a JSON parser accepts and refuses what it refuses (within its
    /// nesting bound), on short texts of JSON's own characters.
    #[cfg(not(target_arch = "wasm32"))]
    mod like_serde_json {
        use super::*;
        use proptest::prelude::*;

        fn skips(json: &[u8]) -> bool {
            let mut r = Reader::new(json);
            r.skip().is_ok() && r.peek().is_none()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4096))]
            #[test]
            fn on_json_characters(
                json in proptest::collection::vec(
                    prop::sample::select(b"{}[]\",: -+0123456789.eEnultrfas\\/\x01".to_vec()),
                    0..24,
                )
            ) {
                // Read as Go's decoder skips a member: the shape checked, not the number's range
                // (`1e309` is JSON, if no f64).
                let theirs = serde_json::from_slice::<serde::de::IgnoredAny>(&json).is_ok();
                prop_assert_eq!(skips(&json), theirs, "{:?}", String::from_utf8_lossy(&json));
            }

            #[test]
            fn on_any_value(value in any_value()) {
                let text = serde_json::to_vec(&value).unwrap();
                prop_assert!(skips(&text), "{:?}", String::from_utf8_lossy(&text));
            }
        }

        fn any_value() -> impl Strategy<Value = serde_json::Value> {
            use serde_json::Value;
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(Value::from),
                any::<String>().prop_map(Value::String),
            ];
            leaf.prop_recursive(6, 64, 8, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                    proptest::collection::btree_map(any::<String>(), inner, 0..8)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }
    }
}
