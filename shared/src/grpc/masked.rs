//! A message of the protocol as the feed shows it, written by the protocol's generated JSON code
//! (pbjson) rather than by reflection on its descriptors, which costs about three times as much
//! (see docs/performance.md, issue 22, step 21). [`shown_typed`] decodes a message as its Rust type
//! and writes it through [`Masking`]: a serde serializer in front of serde_json's that does what
//! [`super::feed::mask`] does to a reflected message. Hidden fields show `"(hidden)"`, card numbers
//! are masked and order numbers, sign-up ids and batch numbers collected.
//!
//! Hand-written, because no crate masks by field name: serde's data model is forwarded as it is,
//! and only four of its calls are ours (a message beginning, a message's field, a string, and a
//! number that is not finite, which protobuf's JSON writes as a string).

use std::cell::RefCell;

use prost_reflect::Kind;
use serde::ser::{
    Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple,
    SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

use super::feed::{CARD_FIELDS, HIDDEN, HIDDEN_FIELDS, looks_like_card, mask_card, note_key};
use crate::feed::Keys;

/// A message body of type `M` as the feed shows it (JSON, proto field names, defaults left out),
/// and the keys it names. `None`: not a message of its type, or one its generated code will not
/// write (an enum value the protocol does not name, a timestamp out of JSON's range); the caller
/// then shows it by its descriptor.
pub(super) fn shown_typed<M>(body: &[u8]) -> Option<(String, Keys)>
where
    M: prost::Message + Serialize + Default,
{
    let msg = M::decode(body).ok()?;
    let keys = RefCell::new(Keys::default());
    let at = At {
        message: "",
        field: "",
        keys: &keys,
    };
    let json = serde_json::to_string(&Masked { value: &msg, at }).ok()?;
    Some((json, keys.into_inner()))
}

/// Where a value being written stands.
#[derive(Clone, Copy)]
struct At<'k> {
    /// The full name of the message whose field it is (as the generated code names it).
    message: &'static str,
    /// The field's name.
    field: &'static str,
    keys: &'k RefCell<Keys>,
}

/// Whether field `field` of message `message` holds text (a string, a list of them, a map to
/// them): a 64-bit number or bytes are written as strings too, and are not card numbers. A field
/// the descriptors do not know is taken as text.
fn holds_text(message: &str, field: &str) -> bool {
    let Some(f) = super::feed::pool()
        .get_message_by_name(message)
        .and_then(|m| m.get_field_by_name(field))
    else {
        return true;
    };
    let kind = match f.kind() {
        Kind::Message(entry) if f.is_map() => entry.map_entry_value_field().kind(),
        kind => kind,
    };
    matches!(kind, Kind::String)
}

/// A serializer that masks what it writes (see the module documentation).
struct Masking<'k, S> {
    out: S,
    at: At<'k>,
}

/// A value to be written through [`Masking`].
struct Masked<'v, 'k, T: ?Sized> {
    value: &'v T,
    at: At<'k>,
}

impl<T: Serialize + ?Sized> Serialize for Masked<'_, '_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(Masking {
            out: s,
            at: self.at,
        })
    }
}

/// A list, map or message being written: each of its parts masked.
struct Parts<'k, C> {
    out: C,
    at: At<'k>,
}

impl<'k, C> Parts<'k, C> {
    /// Field `field` of a message, holding `value`, as it is shown: a hidden field shows
    /// `"(hidden)"` whatever it holds.
    fn field<'v, T: ?Sized>(&self, field: &'static str, value: &'v T) -> FieldShown<'v, 'k, T> {
        if HIDDEN_FIELDS.contains(&field) {
            return FieldShown::Hidden;
        }
        let at = At { field, ..self.at };
        FieldShown::Masked(Masked { value, at })
    }
}

/// A message's field as it is shown.
enum FieldShown<'v, 'k, T: ?Sized> {
    Hidden,
    Masked(Masked<'v, 'k, T>),
}

impl<T: Serialize + ?Sized> Serialize for FieldShown<'_, '_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FieldShown::Hidden => s.serialize_str(HIDDEN),
            FieldShown::Masked(m) => m.serialize(s),
        }
    }
}

macro_rules! forward {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(fn $method(self, v: $ty) -> Result<S::Ok, S::Error> {
            self.out.$method(v)
        })*
    };
}

impl<'k, S: Serializer> Serializer for Masking<'k, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Parts<'k, S::SerializeSeq>;
    type SerializeTuple = Parts<'k, S::SerializeTuple>;
    type SerializeTupleStruct = Parts<'k, S::SerializeTupleStruct>;
    type SerializeTupleVariant = Parts<'k, S::SerializeTupleVariant>;
    type SerializeMap = Parts<'k, S::SerializeMap>;
    type SerializeStruct = Parts<'k, S::SerializeStruct>;
    type SerializeStructVariant = Parts<'k, S::SerializeStructVariant>;

    forward!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_char(char),
        serialize_bytes(&[u8]),
        serialize_unit_struct(&'static str),
    );

    /// A card number masked (in a field of another name too), a key noted.
    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        let At { message, field, .. } = self.at;
        note_key(field, v, &mut self.at.keys.borrow_mut());
        if CARD_FIELDS.contains(&field) || (looks_like_card(v) && holds_text(message, field)) {
            self.out.serialize_str(&mask_card(v))
        } else {
            self.out.serialize_str(v)
        }
    }

    /// Not a number or infinite: a string, as protobuf's JSON has it (serde_json would write
    /// `null`).
    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        match v {
            _ if v.is_nan() => self.out.serialize_str("NaN"),
            f64::INFINITY => self.out.serialize_str("Infinity"),
            f64::NEG_INFINITY => self.out.serialize_str("-Infinity"),
            _ => self.out.serialize_f64(v),
        }
    }

    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            self.out.serialize_f32(v)
        } else {
            self.serialize_f64(f64::from(v))
        }
    }

    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.out.serialize_none()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.out.serialize_some(&Masked { value, at: self.at })
    }

    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.out.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.out.serialize_unit_variant(name, index, variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let at = self.at;
        self.out
            .serialize_newtype_struct(name, &Masked { value, at })
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let at = self.at;
        self.out
            .serialize_newtype_variant(name, index, variant, &Masked { value, at })
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        let out = self.out.serialize_seq(len)?;
        Ok(Parts { out, at: self.at })
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        let out = self.out.serialize_tuple(len)?;
        Ok(Parts { out, at: self.at })
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        let out = self.out.serialize_tuple_struct(name, len)?;
        Ok(Parts { out, at: self.at })
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        let out = self
            .out
            .serialize_tuple_variant(name, index, variant, len)?;
        Ok(Parts { out, at: self.at })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        let out = self.out.serialize_map(len)?;
        Ok(Parts { out, at: self.at })
    }

    /// A message: its fields are named in it.
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        let out = self.out.serialize_struct(name, len)?;
        let at = At {
            message: name,
            ..self.at
        };
        Ok(Parts { out, at })
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        let out = self
            .out
            .serialize_struct_variant(name, index, variant, len)?;
        let at = At {
            message: name,
            ..self.at
        };
        Ok(Parts { out, at })
    }

    fn is_human_readable(&self) -> bool {
        self.out.is_human_readable()
    }
}

impl<'k, C: SerializeStruct> SerializeStruct for Parts<'k, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        field: &'static str,
        value: &T,
    ) -> Result<(), C::Error> {
        let shown = self.field(field, value);
        self.out.serialize_field(field, &shown)
    }

    fn skip_field(&mut self, field: &'static str) -> Result<(), C::Error> {
        self.out.skip_field(field)
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.out.end()
    }
}

impl<'k, C: SerializeStructVariant> SerializeStructVariant for Parts<'k, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        field: &'static str,
        value: &T,
    ) -> Result<(), C::Error> {
        let shown = self.field(field, value);
        self.out.serialize_field(field, &shown)
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.out.end()
    }
}

/// A list's items (a tuple's, which the protocol's code does not write): masked as the field
/// that holds them.
macro_rules! items_masked {
    ($($part:ident :: $method:ident),* $(,)?) => {$(
        impl<C: $part> $part for Parts<'_, C> {
            type Ok = C::Ok;
            type Error = C::Error;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
                self.out.$method(&Masked { value, at: self.at })
            }

            fn end(self) -> Result<C::Ok, C::Error> {
                self.out.end()
            }
        }
    )*};
}

items_masked!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

/// A map's keys as they are (as the reflected path leaves them), its values masked.
impl<'k, C: SerializeMap> SerializeMap for Parts<'k, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), C::Error> {
        self.out.serialize_key(key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        self.out.serialize_value(&Masked { value, at: self.at })
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.out.end()
    }
}
