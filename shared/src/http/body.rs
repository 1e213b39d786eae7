//! Request bodies: a JSON object read into the route's type, or a refusal that says why.
//!
//! 415 `UNSUPPORTED_MEDIA_TYPE` when the body is not sent as JSON, 400 `MALFORMED_JSON` when it is
//! not JSON, 422 `VALIDATION_FAILED` when it is JSON of another shape than the route's: not an
//! object, or a field missing, unknown, of the wrong type or named twice. A 422 names the field.

use std::fmt;

use lambda_http::Request;
use lambda_http::http::{StatusCode, header};
use serde::Deserialize;
use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{
    self, DeserializeOwned, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde_json::error::Category;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// The error of a reading, with where in the body it happened.
type Refused = serde_path_to_error::Error<serde_json::Error>;

/// Parses a JSON body into `T`.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let body: &[u8] = req.body().as_ref();
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "MALFORMED_JSON",
            "a JSON body is required",
        ));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the body as application/json",
        ));
    }
    let value = Lenient::read(body)?;
    // Read again to say where: only refused bodies pay for the path.
    T::deserialize(Strict(&value))
        .or_else(|_| serde_path_to_error::deserialize(Strict(&value)).map_err(refusal))
}

/// For an optional field of a request body: it may be left out, but `null` is not a value (serde
/// reads `null` as "left out" by default, which the API document does not allow):
/// `#[serde(default, deserialize_with = "http::present")]`.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// The body as a JSON value, with each whole number written with a fraction or an exponent
/// (`154.0`, `1e2`) as the integer it is: JSON Schema and JavaScript take it for one, serde's
/// integer types do not. An object that names a field twice is refused here (serde_json's own
/// `Value` would keep the last and hide it).
struct Lenient(Value);

impl Lenient {
    fn read(body: &[u8]) -> Result<Value, ApiError> {
        match serde_json::from_slice(body) {
            Ok(Lenient(value)) => Ok(value),
            Err(err) if err.classify() != Category::Data => Err(malformed(err)),
            // A field named twice: read again to say where (only such bodies pay for the path).
            Err(err) => {
                let mut deserializer = serde_json::Deserializer::from_slice(body);
                Err(
                    serde_path_to_error::deserialize::<_, Lenient>(&mut deserializer)
                        .err()
                        .map_or_else(
                            || ApiError::validation("body", in_plain_words(&err)),
                            refusal,
                        ),
                )
            }
        }
    }
}

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LenientVisitor)
    }
}

struct LenientVisitor;

impl<'de> Visitor<'de> for LenientVisitor {
    type Value = Lenient;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Lenient, E> {
        Ok(Lenient(v.into()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Lenient, E> {
        Ok(Lenient(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Lenient, E> {
        Ok(Lenient(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Lenient, E> {
        // Exact: |v| < 2^53.
        if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
            return Ok(Lenient((v as i64).into()));
        }
        Ok(Lenient(v.into()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Lenient, E> {
        Ok(Lenient(v.into()))
    }

    fn visit_string<E>(self, v: String) -> Result<Lenient, E> {
        Ok(Lenient(v.into()))
    }

    fn visit_unit<E>(self) -> Result<Lenient, E> {
        Ok(Lenient(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Lenient, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(Lenient(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Lenient(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Lenient, A::Error> {
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if fields.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
            }
            let Lenient(field) = map.next_value()?;
            fields.insert(key, field);
        }
        Ok(Lenient(Value::Object(fields)))
    }
}

/// A JSON value read into a route's type as the API document reads it. serde's derive also takes
/// a struct from an array of its fields in order (`[["kimbap", 2]]` for `[{"itemId": "kimbap",
/// "quantity": 2}]`, `["PICKUP"]` for `{"type": "PICKUP"}`); every object in a body the API takes
/// is an object, and the document says so. Otherwise this reads as serde_json's `Value` does.
struct Strict<'a>(&'a Value);

impl<'de> Deserializer<'de> for Strict<'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => visitor.visit_u64(u),
                (None, Some(i)) => visitor.visit_i64(i),
                (None, None) => visitor.visit_f64(n.as_f64().unwrap_or_default()),
            },
            Value::String(s) => visitor.visit_borrowed_str(s),
            // An internally tagged enum (`{"type": "PICKUP"}`) is read through here, not as a
            // struct: its derive would take its tag from an array's first element.
            Value::Array(_) if expects_an_object(&visitor) => {
                Err(de::Error::invalid_type(de::Unexpected::Seq, &visitor))
            }
            Value::Array(_) => self.deserialize_seq(visitor),
            Value::Object(fields) => {
                let mut map =
                    MapDeserializer::new(fields.iter().map(|(k, v)| (k.as_str(), Strict(v))));
                let read = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(read)
            }
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(_) => self.deserialize_any(visitor),
            other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
        }
    }

    // A list is read here, not through `deserialize_any`, which asks its visitor what it expects.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => {
                let mut seq = SeqDeserializer::new(items.iter().map(Strict));
                let read = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(read)
            }
            other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    /// Every enum a body takes is one of a list of names (`"OWNER"`); the one with fields, a
    /// fulfilment, is tagged inside its object and read through `deserialize_any`.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::String(name) => visitor.visit_enum(name.as_str().into_deserializer()),
            other => Err(de::Error::invalid_type(unexpected(other), &"a string")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct tuple tuple_struct map identifier
    }
}

impl<'de> IntoDeserializer<'de, serde_json::Error> for Strict<'de> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

/// Whether a visitor reads an object only: serde's derive names what it expects, and a visitor
/// that takes any JSON value (`serde_json::Value`, a webhook's `data`) names something else.
fn expects_an_object(visitor: &dyn de::Expected) -> bool {
    let expected = visitor.to_string();
    ["struct ", "internally tagged enum "]
        .iter()
        .any(|object| expected.starts_with(object))
}

/// What a JSON value is, as serde names what it found.
fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => de::Unexpected::Signed(i),
            None => de::Unexpected::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

fn malformed(err: serde_json::Error) -> ApiError {
    ApiError::bad_request(
        "MALFORMED_JSON",
        format!("the body is not valid JSON: {err}"),
    )
}

/// A reading's error as the client is told it: well-formed JSON of the wrong shape is a validation
/// error naming the field, anything else is malformed.
fn refusal(err: Refused) -> ApiError {
    // The body itself (a field missing from it, say) is `.` to serde: name it for people.
    let path = match err.path().to_string() {
        root if root == "." => "body".to_owned(),
        path => path,
    };
    let inner = err.into_inner();
    match inner.classify() {
        Category::Data => ApiError::validation(&path, in_plain_words(&inner)),
        _ => malformed(inner),
    }
}

/// What serde says of a body of the wrong shape, for the people who read it: without the place in
/// the text (the field's path says where); JSON's names for what was found (an array, an object),
/// not serde's or Rust's (a sequence, a map, `struct OrderLine`); and an integer as a whole number,
/// not as Rust's type — with the type's range when the number is whole but outside it (`-1` for a
/// `u32` is a whole number; `99999999999999999999` is one too, though serde reads it as a float).
fn in_plain_words(err: &serde_json::Error) -> String {
    const RANGES: [(&str, &str); 6] = [
        ("u8", "0 to 255"),
        ("u16", "0 to 65535"),
        ("u32", "0 to 4294967295"),
        ("u64", "0 to 18446744073709551615"),
        ("i32", "-2147483648 to 2147483647"),
        ("i64", "-9223372036854775808 to 9223372036854775807"),
    ];
    let said = err.to_string();
    let place = format!(" at line {} column {}", err.line(), err.column());
    let said = said.strip_suffix(&place).unwrap_or(&said);
    let said = said
        .replacen("invalid type: sequence,", "invalid type: array,", 1)
        .replacen("invalid type: map,", "invalid type: object,", 1)
        .replacen("expected a sequence", "expected an array", 1);
    // "expected struct OrderLine", "… with 2 elements", "expected internally tagged enum …".
    if let Some(at) = ["expected struct ", "expected internally tagged enum "]
        .iter()
        .find_map(|rust| said.find(rust))
    {
        return format!("{}expected an object", &said[..at]);
    }
    let Some((head, range)) = RANGES.iter().find_map(|(int, range)| {
        said.strip_suffix(int)
            .and_then(|head| head.strip_suffix("expected "))
            .map(|head| (head, range))
    }) else {
        return said;
    };
    // serde's "invalid value: integer `-1`" or "invalid type: floating point `1e+20`".
    let number = head.split('`').nth(1).unwrap_or_default();
    let whole = head.starts_with("invalid value: integer")
        || (head.starts_with("invalid type: floating point")
            && number.parse::<f64>().is_ok_and(|n| n.fract() == 0.0));
    if whole {
        format!("{number} is out of range, expected a whole number from {range}")
    } else {
        format!("{head}expected a whole number")
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use lambda_http::Body;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Login {
        #[allow(dead_code)]
        email: String,
    }

    pub(in crate::http) fn request(content_type: Option<&str>, body: &str) -> Request {
        let mut builder = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/x");
        if let Some(ct) = content_type {
            builder = builder.header("content-type", ct);
        }
        builder.body(Body::Text(body.to_owned())).unwrap()
    }

    #[test]
    fn integral_numbers_written_as_floats_are_integers() {
        #[derive(Debug, serde::Deserialize, PartialEq)]
        #[serde(deny_unknown_fields)]
        struct Move {
            to: String,
            #[serde(rename = "etaMinutes")]
            eta_minutes: u32,
        }
        let json = |body: &str| json_body::<Move>(&request(Some("application/json"), body));
        for body in [
            r#"{"to": "ACCEPTED", "etaMinutes": 15}"#,
            r#"{"to": "ACCEPTED", "etaMinutes": 15.0}"#,
            r#"{"to": "ACCEPTED", "etaMinutes": 1.5e1}"#,
        ] {
            assert_eq!(json(body).unwrap().eta_minutes, 15, "{body}");
        }
        for (body, code) in [
            (
                r#"{"to": "ACCEPTED", "etaMinutes": 15.5}"#,
                "VALIDATION_FAILED",
            ),
            (
                r#"{"to": "ACCEPTED", "etaMinutes": -1.0}"#,
                "VALIDATION_FAILED",
            ),
            (
                r#"{"to": "ACCEPTED", "etaMinutes": 15.0, "x": 1}"#,
                "VALIDATION_FAILED",
            ),
            (
                r#"{"to": "ACCEPTED", "etaMinutes": 15.0} x"#,
                "MALFORMED_JSON",
            ),
        ] {
            let err = json(body).unwrap_err();
            assert_eq!(err.code, code, "{body}");
        }
        // The error still names the field.
        let err = json(r#"{"to": "ACCEPTED", "etaMinutes": 15.5}"#).unwrap_err();
        assert!(err.message.contains("etaMinutes"), "{}", err.message);
        // A field missing from the body is named, and the body is called that.
        let err = json(r#"{"etaMinutes": 15}"#).unwrap_err();
        assert!(
            err.message.starts_with("body: missing field `to`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn optional_fields_may_be_left_out_but_not_null() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Patch {
            #[serde(default, deserialize_with = "present")]
            note: Option<String>,
        }
        let json = |body: &str| json_body::<Patch>(&request(Some("application/json"), body));
        assert_eq!(json("{}").unwrap().note, None);
        assert_eq!(json(r#"{"note": "x"}"#).unwrap().note.as_deref(), Some("x"));
        let err = json(r#"{"note": null}"#).unwrap_err();
        assert_eq!((err.status.as_u16(), err.code), (422, "VALIDATION_FAILED"));
        assert!(err.message.contains("note"), "{}", err.message);
    }

    #[test]
    fn a_body_of_the_wrong_shape_is_refused_in_plain_words() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Item {
            price: i64,
            quantity: u32,
        }
        let message = |body: &str| {
            json_body::<Item>(&request(Some("application/json"), body))
                .unwrap_err()
                .message
        };
        assert_eq!(
            message(r#"{"price": 1500.5, "quantity": 1}"#),
            "price: invalid type: floating point `1500.5`, expected a whole number"
        );
        assert_eq!(
            message(r#"{"price": 1500, "quantity": "two"}"#),
            "quantity: invalid type: string \"two\", expected a whole number"
        );
        // Whole, but not of the field's type: its range is said, not "a whole number".
        assert_eq!(
            message(r#"{"price": 1500, "quantity": -1}"#),
            "quantity: -1 is out of range, expected a whole number from 0 to 4294967295"
        );
        assert_eq!(
            message(r#"{"price": 99999999999999999999, "quantity": 1}"#),
            "price: 1e+20 is out of range, expected a whole number from \
             -9223372036854775808 to 9223372036854775807"
        );
        assert_eq!(
            message(r#"{"price": 1500, "quantity": 1, "total": 1}"#),
            "total: unknown field `total`, expected `price` or `quantity`"
        );
        // Still integers when written as floats that are whole.
        assert!(
            json_body::<Item>(&request(
                Some("application/json"),
                r#"{"price": 1500.0, "quantity": 1}"#
            ))
            .is_ok()
        );
    }

    fn code_of(result: Result<Login, ApiError>) -> (u16, &'static str) {
        let err = result.unwrap_err();
        (err.status.as_u16(), err.code)
    }

    #[test]
    fn body_errors_have_distinct_codes() {
        let json = Some("application/json; charset=utf-8");
        assert_eq!(
            code_of(json_body(&request(json, "{"))),
            (400, "MALFORMED_JSON")
        );
        assert_eq!(
            code_of(json_body(&request(json, ""))),
            (400, "MALFORMED_JSON")
        );
        assert_eq!(
            code_of(json_body(&request(
                json,
                r#"{"email":"a@b.c","role":"ADMIN"}"#
            ))),
            (422, "VALIDATION_FAILED")
        );
        assert_eq!(
            code_of(json_body(&request(json, r#"{"email":7}"#))),
            (422, "VALIDATION_FAILED")
        );
        assert_eq!(
            code_of(json_body(&request(Some("text/plain"), r#"{"email":"a"}"#))),
            (415, "UNSUPPORTED_MEDIA_TYPE")
        );
        assert!(json_body::<Login>(&request(json, r#"{"email":"a@b.c"}"#)).is_ok());
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    enum Role {
        Owner,
        Staff,
    }

    #[derive(Debug, Deserialize)]
    #[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
    #[allow(dead_code)]
    enum Fulfilment {
        Pickup,
        Delivery { address: String },
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Line {
        item: String,
        quantity: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Order {
        role: Role,
        fulfilment: Fulfilment,
        lines: Vec<Line>,
    }

    /// The refusal of an order body with `field` replaced by `value` (JSON text), as the client
    /// reads it: status, code, message.
    fn refused(field: &str, value: &str) -> (u16, &'static str, String) {
        let mut fields = [
            ("role", r#""OWNER""#),
            ("fulfilment", r#"{"type": "PICKUP"}"#),
            ("lines", r#"[{"item": "latte", "quantity": 1}]"#),
        ];
        fields
            .iter_mut()
            .find(|(name, _)| *name == field)
            .unwrap()
            .1 = value;
        let body = fields
            .iter()
            .map(|(name, value)| format!(r#""{name}": {value}"#))
            .collect::<Vec<_>>()
            .join(", ");
        let err = json_body::<Order>(&request(Some("application/json"), &format!("{{{body}}}")))
            .expect_err(&body);
        (err.status.as_u16(), err.code, err.message.into_owned())
    }

    #[test]
    fn a_body_is_an_object() {
        let read = |body: &str| json_body::<Login>(&request(Some("application/json"), body));
        // serde would take a struct's fields from an array, in order: the API does not.
        for (body, found) in [
            (r#"["a@b.c"]"#, "array"),
            ("[]", "array"),
            ("null", "null"),
            (r#""a@b.c""#, r#"string "a@b.c""#),
            (" 5", "integer `5`"),
        ] {
            let err = read(body).unwrap_err();
            assert_eq!(
                (err.status.as_u16(), err.code, err.message.into_owned()),
                (
                    422,
                    "VALIDATION_FAILED",
                    format!("body: invalid type: {found}, expected an object")
                ),
                "{body}"
            );
        }
        // Not JSON at all is still malformed, whatever it starts with.
        for body in ["[1,", "[1] x", "nul", "\u{feff}{}"] {
            assert_eq!(code_of(read(body)), (400, "MALFORMED_JSON"), "{body}");
        }
        assert!(read("\r\n\t {\"email\": \"a@b.c\"}").is_ok());
    }

    #[test]
    fn an_object_inside_a_body_is_an_object_too() {
        // serde's derive would read each of these as the object whose fields it lists in order.
        for (field, value, said) in [
            (
                "lines",
                r#"[["latte", 1]]"#,
                "lines[0]: invalid type: array, expected an object",
            ),
            (
                "fulfilment",
                r#"["PICKUP"]"#,
                "fulfilment: invalid type: array, expected an object",
            ),
            (
                "fulfilment",
                r#"["DELIVERY", "Seoul"]"#,
                "fulfilment: invalid type: array, expected an object",
            ),
        ] {
            assert_eq!(
                refused(field, value),
                (422, "VALIDATION_FAILED", said.to_owned()),
                "{field}: {value}"
            );
        }
        // A field that takes any JSON value (a webhook's `data`) still takes an array.
        #[derive(Debug, Deserialize)]
        struct Webhook {
            data: Value,
        }
        let webhook = json_body::<Webhook>(&request(
            Some("application/json"),
            r#"{"data": [1, {"a": [2.0]}]}"#,
        ))
        .unwrap();
        assert_eq!(webhook.data, serde_json::json!([1, {"a": [2]}]));
    }

    #[test]
    fn a_field_named_twice_is_refused_wherever_it_is() {
        let read = |body: &str| json_body::<Order>(&request(Some("application/json"), body));
        for (body, said) in [
            (
                r#"{"role": "STAFF", "role": "OWNER", "fulfilment": {"type": "PICKUP"}, "lines": []}"#,
                "body: duplicate field `role`",
            ),
            // A whole number written as a float sends the body to the second reading, which
            // must refuse the repeat as the first does.
            (
                r#"{"role": "STAFF", "role": "OWNER", "fulfilment": {"type": "PICKUP"},
                    "lines": [{"item": "latte", "quantity": 1.0}]}"#,
                "body: duplicate field `role`",
            ),
            (
                r#"{"role": "OWNER", "fulfilment": {"type": "PICKUP"},
                    "lines": [{"item": "latte", "quantity": 1.0, "quantity": 9}]}"#,
                "lines[0]: duplicate field `quantity`",
            ),
            (
                r#"{"role": "OWNER", "fulfilment": {"type": "PICKUP"},
                    "lines": [{"item": "latte", "quantity": 1, "quantity": 9}]}"#,
                "lines[0]: duplicate field `quantity`",
            ),
        ] {
            let err = read(body).unwrap_err();
            assert_eq!(
                (err.status.as_u16(), err.code, &*err.message),
                (422, "VALIDATION_FAILED", said),
                "{body}"
            );
        }
        // The repeat refused, not the float: the same body without it is read.
        let order = read(
            r#"{"role": "OWNER", "fulfilment": {"type": "PICKUP"},
                "lines": [{"item": "latte", "quantity": 9.0}]}"#,
        )
        .unwrap();
        assert_eq!(order.lines[0].quantity, 9);
    }

    #[test]
    fn a_value_of_the_wrong_kind_is_named_as_json_names_it() {
        for (field, value, said) in [
            // Well-formed JSON, so never malformed (serde_json's typed reading called these so).
            (
                "role",
                "5",
                "role: invalid type: integer `5`, expected a string",
            ),
            ("role", "[]", "role: invalid type: array, expected a string"),
            (
                "role",
                "{}",
                "role: invalid type: object, expected a string",
            ),
            // serde reads a variant from an object of one field; every enum a body takes is a
            // name.
            (
                "role",
                r#"{"OWNER": null}"#,
                "role: invalid type: object, expected a string",
            ),
            (
                "role",
                r#""CHEF""#,
                "role: unknown variant `CHEF`, expected `OWNER` or `STAFF`",
            ),
            (
                "fulfilment",
                r#""PICKUP""#,
                r#"fulfilment: invalid type: string "PICKUP", expected an object"#,
            ),
            (
                "fulfilment",
                r#"{"type": "DELIVERY"}"#,
                "fulfilment: missing field `address`",
            ),
            (
                "lines",
                "{}",
                "lines: invalid type: object, expected an array",
            ),
            (
                "lines",
                r#"["latte"]"#,
                r#"lines[0]: invalid type: string "latte", expected an object"#,
            ),
            (
                "lines",
                r#"[{"item": "latte", "quantity": "1"}]"#,
                r#"lines[0].quantity: invalid type: string "1", expected a whole number"#,
            ),
        ] {
            assert_eq!(
                refused(field, value),
                (422, "VALIDATION_FAILED", said.to_owned()),
                "{field}: {value}"
            );
        }
    }
}
