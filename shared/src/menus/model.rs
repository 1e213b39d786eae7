//! The menu as stored and served: categories, items, option groups; and the rules a valid menu keeps.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::text::{Lines, text};

/// KRW. Prices are integers in `0..=MAX_PRICE`; sums are computed with checked arithmetic.
pub const MAX_PRICE: i64 = 10_000_000;
pub const MAX_CATEGORIES: usize = 50;
pub const MAX_ITEMS: usize = 300;
pub const MAX_OPTION_GROUPS: usize = 100;
pub const MAX_VALUES: usize = 30;
pub const MAX_GROUPS_PER_ITEM: usize = 10;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Menu {
    pub categories: Vec<Category>,
    pub items: Vec<MenuItem>,
    pub option_groups: Vec<OptionGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Category {
    pub id: String,
    pub name: String,
    pub position: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MenuItem {
    pub id: String,
    pub category_id: String,
    pub name: String,
    pub description: String,
    pub price: i64,
    /// False: sold out.
    pub available: bool,
    /// The S3 key of the item's image, set only by the upload flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_key: Option<String>,
    pub option_group_ids: Vec<String>,
    pub position: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OptionKind {
    /// Pick exactly one value (or none, if not required).
    SingleChoice,
    /// Pick between `min` and `max` distinct values.
    MultiChoice,
    /// Pick quantities of values; the total is between `min` and `max`.
    Quantity,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OptionValue {
    pub id: String,
    pub name: String,
    pub price: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OptionGroup {
    pub id: String,
    pub name: String,
    pub kind: OptionKind,
    pub required: bool,
    pub min: u32,
    pub max: u32,
    pub values: Vec<OptionValue>,
}

/// `PUT …/categories/{categoryId}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CategoryInput {
    pub name: String,
    #[serde(default)]
    pub position: u32,
}

/// `PUT …/items/{itemId}`. The image and the id come from elsewhere; whether it is sold out and
/// its place, when left out, from the item it replaces (a new one: available, first).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ItemInput {
    pub category_id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub price: i64,
    /// The staff's sold-out switch: an owner's edit that does not name it leaves it as it is, so
    /// that a price changed from a page read before an item sold out does not put it back on sale.
    #[serde(default, deserialize_with = "crate::http::present")]
    pub available: Option<bool>,
    #[serde(default)]
    pub option_group_ids: Vec<String>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub position: Option<u32>,
}

/// `PUT …/option-groups/{groupId}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OptionGroupInput {
    pub name: String,
    pub kind: OptionKind,
    #[serde(default)]
    pub required: bool,
    pub min: u32,
    pub max: u32,
    pub values: Vec<OptionValue>,
}

fn price(field: &str, value: i64) -> Result<i64, ApiError> {
    if (0..=MAX_PRICE).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::validation(
            field,
            "a price in KRW between 0 and 10,000,000",
        ))
    }
}

impl CategoryInput {
    pub fn into_category(self, id: &str) -> Result<Category, ApiError> {
        crate::http::validate_id("categoryId", id)?;
        Ok(Category {
            id: id.to_owned(),
            name: text("name", &self.name, 1..=100, Lines::One)?,
            position: self.position,
        })
    }
}

impl ItemInput {
    /// The item this input makes in place of `was` (none: a new one).
    pub fn into_item(self, id: &str, was: Option<&MenuItem>) -> Result<MenuItem, ApiError> {
        crate::http::validate_id("itemId", id)?;
        crate::http::validate_id("categoryId", &self.category_id)?;
        if self.option_group_ids.len() > MAX_GROUPS_PER_ITEM {
            return Err(ApiError::validation(
                "optionGroupIds",
                "at most 10 groups an item",
            ));
        }
        for (i, group) in self.option_group_ids.iter().enumerate() {
            crate::http::validate_id(&format!("optionGroupIds[{i}]"), group)?;
            if self.option_group_ids[..i].contains(group) {
                return Err(ApiError::validation(
                    &format!("optionGroupIds[{i}]"),
                    "appears twice",
                ));
            }
        }
        Ok(MenuItem {
            id: id.to_owned(),
            name: text("name", &self.name, 1..=100, Lines::One)?,
            description: text("description", &self.description, 0..=500, Lines::Many)?,
            price: price("price", self.price)?,
            category_id: self.category_id,
            available: self.available.or(was.map(|w| w.available)).unwrap_or(true),
            image_key: was.and_then(|w| w.image_key.clone()),
            option_group_ids: self.option_group_ids,
            position: self.position.or(was.map(|w| w.position)).unwrap_or(0),
        })
    }
}

impl OptionGroupInput {
    pub fn into_group(self, id: &str) -> Result<OptionGroup, ApiError> {
        crate::http::validate_id("groupId", id)?;
        let name = text("name", &self.name, 1..=100, Lines::One)?;
        if self.values.len() > MAX_VALUES {
            return Err(ApiError::validation("values", "at most 30 values a group"));
        }
        let mut values = Vec::with_capacity(self.values.len());
        for (i, value) in self.values.into_iter().enumerate() {
            crate::http::validate_id(&format!("values[{i}].id"), &value.id)?;
            if values.iter().any(|v: &OptionValue| v.id == value.id) {
                return Err(ApiError::validation(
                    &format!("values[{i}].id"),
                    "appears twice",
                ));
            }
            values.push(OptionValue {
                name: text(
                    &format!("values[{i}].name"),
                    &value.name,
                    1..=100,
                    Lines::One,
                )?,
                price: price(&format!("values[{i}].price"), value.price)?,
                id: value.id,
            });
        }
        if self.min > self.max {
            return Err(ApiError::validation("min", "greater than max"));
        }
        if self.required && values.is_empty() {
            return Err(ApiError::validation(
                "values",
                "a required group needs values",
            ));
        }
        if self.required && self.min == 0 {
            return Err(ApiError::validation(
                "min",
                "a required group needs min of at least 1",
            ));
        }
        match self.kind {
            OptionKind::SingleChoice if self.max != 1 => {
                return Err(ApiError::validation(
                    "max",
                    "a single-choice group has max 1",
                ));
            }
            OptionKind::SingleChoice | OptionKind::MultiChoice
                if self.min as usize > values.len() =>
            {
                return Err(ApiError::validation(
                    "min",
                    "more than the group has values",
                ));
            }
            OptionKind::Quantity if self.max > 99 => {
                return Err(ApiError::validation("max", "at most 99"));
            }
            _ => {}
        }
        Ok(OptionGroup {
            id: id.to_owned(),
            name,
            kind: self.kind,
            required: self.required,
            min: self.min,
            max: self.max,
            values,
        })
    }
}

impl Menu {
    /// Rules that span entities: references resolve, sizes stay bounded.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.categories.len() > MAX_CATEGORIES {
            return Err(ApiError::validation("categories", "at most 50 categories"));
        }
        if self.items.len() > MAX_ITEMS {
            return Err(ApiError::validation("items", "at most 300 items"));
        }
        if self.option_groups.len() > MAX_OPTION_GROUPS {
            return Err(ApiError::validation(
                "optionGroups",
                "at most 100 option groups",
            ));
        }
        for item in &self.items {
            if !self.categories.iter().any(|c| c.id == item.category_id) {
                return Err(ApiError::validation("categoryId", "no such category"));
            }
            for group in &item.option_group_ids {
                if !self.option_groups.iter().any(|g| &g.id == group) {
                    return Err(ApiError::validation(
                        "optionGroupIds",
                        format!("no such option group: {group}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The menu as served: categories and items in display order.
    pub fn sorted(mut self) -> Self {
        self.categories
            .sort_by(|a, b| (a.position, &a.id).cmp(&(b.position, &b.id)));
        let rank = |category: &str| {
            self.categories
                .iter()
                .position(|c| c.id == category)
                .unwrap_or(usize::MAX)
        };
        let mut items = std::mem::take(&mut self.items);
        items.sort_by(|a, b| {
            (rank(&a.category_id), a.position, &a.id).cmp(&(
                rank(&b.category_id),
                b.position,
                &b.id,
            ))
        });
        self.items = items;
        self.option_groups.sort_by(|a, b| a.id.cmp(&b.id));
        self
    }

    pub fn item(&self, id: &str) -> Option<&MenuItem> {
        self.items.iter().find(|i| i.id == id)
    }

    pub fn group(&self, id: &str) -> Option<&OptionGroup> {
        self.option_groups.iter().find(|g| g.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(
        kind: OptionKind,
        required: bool,
        min: u32,
        max: u32,
        values: usize,
    ) -> OptionGroupInput {
        OptionGroupInput {
            name: "Size".into(),
            kind,
            required,
            min,
            max,
            values: (0..values)
                .map(|i| OptionValue {
                    id: format!("v{i}"),
                    name: format!("V{i}"),
                    price: 500,
                })
                .collect(),
        }
    }

    fn field_of(err: ApiError) -> String {
        assert_eq!(err.status.as_u16(), 422);
        err.message.split(':').next().unwrap().to_owned()
    }

    #[test]
    fn option_groups_keep_their_rules() {
        use OptionKind::*;
        assert!(
            group(SingleChoice, true, 1, 1, 3)
                .into_group("size")
                .is_ok()
        );
        assert!(
            group(MultiChoice, false, 0, 3, 5)
                .into_group("toppings")
                .is_ok()
        );
        assert!(
            group(Quantity, false, 0, 10, 2)
                .into_group("extra-shots")
                .is_ok()
        );

        let cases = [
            (group(MultiChoice, false, 3, 2, 5), "min"),
            (group(SingleChoice, true, 1, 1, 0), "values"),
            (group(SingleChoice, true, 0, 1, 2), "min"),
            (group(SingleChoice, false, 0, 2, 3), "max"),
            (group(MultiChoice, false, 4, 4, 3), "min"),
            (group(Quantity, false, 0, 100, 1), "max"),
        ];
        for (input, field) in cases {
            assert_eq!(field_of(input.into_group("g").unwrap_err()), field);
        }
        let mut dup = group(MultiChoice, false, 0, 2, 2);
        dup.values[1].id = "v0".into();
        assert_eq!(field_of(dup.into_group("g").unwrap_err()), "values[1].id");
        let mut negative = group(MultiChoice, false, 0, 2, 2);
        negative.values[0].price = -500;
        assert_eq!(
            field_of(negative.into_group("g").unwrap_err()),
            "values[0].price"
        );
        assert_eq!(
            field_of(
                group(MultiChoice, false, 0, 1, 1)
                    .into_group("bad id!")
                    .unwrap_err()
            ),
            "groupId"
        );
    }

    fn item(category: &str, price: i64, groups: &[&str]) -> ItemInput {
        ItemInput {
            category_id: category.into(),
            name: "Kimbap".into(),
            description: String::new(),
            price,
            available: None,
            option_group_ids: groups.iter().map(|g| g.to_string()).collect(),
            position: None,
        }
    }

    /// An edit that leaves out whether the item is sold out, or its place, keeps the item's own:
    /// a price changed from a page read before the staff switched the item off does not put it
    /// back on sale. Named, they are set; a new item is available and first.
    #[test]
    fn a_replacement_keeps_what_it_does_not_name() {
        let new = item("rolls", 3_500, &[]).into_item("kimbap", None).unwrap();
        assert_eq!((new.available, new.position), (true, 0));
        let mut was = new;
        was.available = false;
        was.position = 7;
        was.image_key = Some("images/kimbap.jpg".into());
        let repriced = item("rolls", 4_000, &[])
            .into_item("kimbap", Some(&was))
            .unwrap();
        assert_eq!(
            (repriced.price, repriced.available, repriced.position),
            (4_000, false, 7)
        );
        assert_eq!(repriced.image_key.as_deref(), Some("images/kimbap.jpg"));
        let named = ItemInput {
            available: Some(true),
            position: Some(2),
            ..item("rolls", 4_000, &[])
        }
        .into_item("kimbap", Some(&was))
        .unwrap();
        assert_eq!((named.available, named.position), (true, 2));
        // Left out is not the same as `null`, which the document does not allow.
        for field in ["available", "position"] {
            let mut body = serde_json::json!({"categoryId": "rolls", "name": "Kimbap", "price": 1});
            body[field] = serde_json::Value::Null;
            assert!(
                serde_json::from_value::<ItemInput>(body).is_err(),
                "{field}: null"
            );
        }
    }

    #[test]
    fn items_keep_their_rules() {
        assert!(
            item("rolls", 3_500, &["size"])
                .into_item("kimbap", None)
                .is_ok()
        );
        assert_eq!(
            field_of(item("rolls", -1, &[]).into_item("k", None).unwrap_err()),
            "price"
        );
        assert_eq!(
            field_of(
                item("rolls", MAX_PRICE + 1, &[])
                    .into_item("k", None)
                    .unwrap_err()
            ),
            "price"
        );
        assert_eq!(
            field_of(
                item("rolls", 1, &["a", "a"])
                    .into_item("k", None)
                    .unwrap_err()
            ),
            "optionGroupIds[1]"
        );
    }

    #[test]
    fn references_must_resolve() {
        let mut menu = Menu::default();
        menu.categories.push(
            CategoryInput {
                name: "Rolls".into(),
                position: 0,
            }
            .into_category("rolls")
            .unwrap(),
        );
        menu.items
            .push(item("rolls", 3_500, &[]).into_item("kimbap", None).unwrap());
        assert!(menu.validate().is_ok());
        menu.items.push(
            item("soups", 6_000, &[])
                .into_item("ramyeon", None)
                .unwrap(),
        );
        assert_eq!(field_of(menu.validate().unwrap_err()), "categoryId");
        menu.items.pop();
        menu.items.push(
            item("rolls", 6_000, &["spice"])
                .into_item("ramyeon", None)
                .unwrap(),
        );
        assert_eq!(field_of(menu.validate().unwrap_err()), "optionGroupIds");
    }

    #[test]
    fn menus_are_served_in_display_order() {
        let mut menu = Menu::default();
        for (id, position) in [("soups", 2), ("rolls", 1)] {
            menu.categories.push(Category {
                id: id.into(),
                name: id.into(),
                position,
            });
        }
        for (id, category, position) in [("b", "soups", 0), ("a", "rolls", 5), ("c", "rolls", 1)] {
            let mut i = item(category, 1, &[]).into_item(id, None).unwrap();
            i.position = position;
            menu.items.push(i);
        }
        let sorted = menu.sorted();
        let ids: Vec<&str> = sorted.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["c", "a", "b"]);
        assert_eq!(sorted.categories[0].id, "rolls");
    }
}
