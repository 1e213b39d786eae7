//! Counter updates that merge: an update of one item that only sets attributes and adds to numbers.
//! Two of them to the same item are one (the additions summed, the later values set), so the
//! counters many events move are written once per stream batch instead of once per event — a write
//! unit (two, in a transaction) saved for every event after the first, and a hot counter's item
//! written once per batch however busy its store.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use crate::storage::{StorageError, key};

/// `SET` these attributes, `ADD` to these numbers, on the item at `pk`, `sk`.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterUpdate {
    pk: String,
    sk: String,
    set: BTreeMap<String, AttributeValue>,
    add: BTreeMap<String, i64>,
}

impl CounterUpdate {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
            set: BTreeMap::new(),
            add: BTreeMap::new(),
        }
    }

    pub fn set(mut self, name: impl Into<String>, value: AttributeValue) -> Self {
        self.set.insert(name.into(), value);
        self
    }

    pub fn add(mut self, name: impl Into<String>, by: i64) -> Self {
        *self.add.entry(name.into()).or_insert(0) += by;
        self
    }

    pub fn key(&self) -> (&str, &str) {
        (&self.pk, &self.sk)
    }

    /// Folds `later` (an update of the same item) into this one.
    fn absorb(&mut self, later: CounterUpdate) {
        debug_assert_eq!(self.key(), later.key());
        self.set.extend(later.set);
        for (name, by) in later.add {
            *self.add.entry(name).or_insert(0) += by;
        }
    }

    /// The transaction item that makes this update. Every name goes through a placeholder, so a
    /// counter may be called anything (`count`, `date` and `name` are reserved words).
    pub fn action(&self, table: &str) -> Result<TransactWriteItem, StorageError> {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut clause = |verb: &str, tag: char, entries: Vec<(&String, AttributeValue)>, link| {
            let parts: Vec<String> = entries
                .into_iter()
                .enumerate()
                .map(|(i, (name, value))| {
                    names.insert(format!("#{tag}{i}"), name.clone());
                    values.insert(format!(":{tag}{i}"), value);
                    format!("#{tag}{i}{link}:{tag}{i}")
                })
                .collect();
            (!parts.is_empty()).then(|| format!("{verb} {}", parts.join(", ")))
        };
        let sets = self.set.iter().map(|(n, v)| (n, v.clone())).collect();
        let adds = self
            .add
            .iter()
            .map(|(n, by)| (n, AttributeValue::N(by.to_string())))
            .collect();
        let expression: Vec<String> = [
            clause("SET", 's', sets, " = "),
            clause("ADD", 'a', adds, " "),
        ]
        .into_iter()
        .flatten()
        .collect();
        let update = Update::builder()
            .table_name(table)
            .set_key(Some(key(&self.pk, &self.sk)))
            .update_expression(expression.join(" "))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|e| StorageError::Backend(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

/// `updates` with those of the same item merged into one, in the order each item first appears.
pub fn merged(updates: impl IntoIterator<Item = CounterUpdate>) -> Vec<CounterUpdate> {
    let mut out: Vec<CounterUpdate> = Vec::new();
    for update in updates {
        match out.iter_mut().find(|u| u.key() == update.key()) {
            Some(earlier) => earlier.absorb(update),
            None => out.push(update),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(orders: i64, gross: i64, hour: &str) -> CounterUpdate {
        CounterUpdate::new("REPORT#s1#2026-12-04", "DAY")
            .set("storeId", AttributeValue::S("s1".into()))
            .add("orders", orders)
            .add("grossSales", gross)
            .add(hour, 1)
    }

    #[test]
    fn updates_of_one_item_merge_into_one_sum() {
        let item = CounterUpdate::new("REPORT#s1#2026-12-04", "ITEM#latte")
            .set("name", AttributeValue::S("Latte".into()))
            .add("count", 2);
        let renamed = CounterUpdate::new("REPORT#s1#2026-12-04", "ITEM#latte")
            .set("name", AttributeValue::S("Caffè latte".into()))
            .add("count", 1);
        let merged = merged([
            day(1, 4_500, "hour09"),
            item,
            day(1, 9_000, "hour10"),
            renamed,
            day(1, -500, "hour09"),
        ]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].key(), ("REPORT#s1#2026-12-04", "DAY"));
        assert_eq!(
            merged[0].add,
            BTreeMap::from([
                ("grossSales".to_owned(), 13_000),
                ("hour09".to_owned(), 2),
                ("hour10".to_owned(), 1),
                ("orders".to_owned(), 3),
            ])
        );
        assert_eq!(merged[1].add["count"], 3);
        assert_eq!(
            merged[1].set["name"],
            AttributeValue::S("Caffè latte".into()),
            "the later value is kept"
        );
    }

    #[test]
    fn an_update_names_every_attribute_through_a_placeholder() {
        let action = day(2, 9_000, "hour09").action("t").unwrap();
        let update = action.update.unwrap();
        assert_eq!(
            update.update_expression,
            "SET #s0 = :s0 ADD #a0 :a0, #a1 :a1, #a2 :a2"
        );
        let names = update.expression_attribute_names.unwrap();
        assert_eq!(names["#s0"], "storeId");
        assert_eq!(names["#a0"], "grossSales");
        assert_eq!(names["#a2"], "orders");
        let values = update.expression_attribute_values.unwrap();
        assert_eq!(values[":a0"], AttributeValue::N("9000".into()));
        assert_eq!(values[":a2"], AttributeValue::N("2".into()));
    }
}
