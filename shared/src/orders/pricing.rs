//! Pricing an order from the menu: every amount comes from the menu, none from the client; every sum
//! is checked arithmetic. Each refusal has its own stable code.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::menus::{Menu, OptionKind};

pub const MAX_LINES: usize = 50;
pub const MAX_QUANTITY: u32 = 99;
/// The largest order total accepted (KRW).
pub const MAX_TOTAL: i64 = 100_000_000;

/// What the customer asks for: items and options by id, quantities. Nothing priced.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LineRequest {
    pub item_id: String,
    pub quantity: u32,
    #[serde(default)]
    pub options: Vec<OptionRequest>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OptionRequest {
    pub group_id: String,
    /// Chosen values (single- and multi-choice groups).
    #[serde(default)]
    pub value_ids: Vec<String>,
    /// Chosen values with quantities (quantity groups).
    #[serde(default)]
    pub quantities: Vec<ValueQuantity>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ValueQuantity {
    pub value_id: String,
    pub quantity: u32,
}

/// A priced line, as stored with the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    pub item_id: String,
    pub name: String,
    pub unit_price: i64,
    pub quantity: u32,
    pub options: Vec<ChosenOption>,
    /// (unit price + options) × quantity.
    pub line_total: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChosenOption {
    pub group_id: String,
    pub value_id: String,
    pub name: String,
    pub price: i64,
    pub quantity: u32,
}

fn refuse(code: &'static str, message: String) -> ApiError {
    ApiError::new(
        lambda_http::http::StatusCode::UNPROCESSABLE_ENTITY,
        code,
        message,
    )
}

fn overflow() -> ApiError {
    refuse("ORDER_TOO_LARGE", "the order total is too large".into())
}

/// Prices `lines` against `menu`: the lines as stored and the total.
pub fn price(menu: &Menu, lines: &[LineRequest]) -> Result<(Vec<Line>, i64), ApiError> {
    if lines.is_empty() || lines.len() > MAX_LINES {
        return Err(ApiError::validation("items", "between 1 and 50 lines"));
    }
    let mut priced = Vec::with_capacity(lines.len());
    let mut total: i64 = 0;
    for (i, request) in lines.iter().enumerate() {
        let line = price_line(menu, i, request)?;
        total = total.checked_add(line.line_total).ok_or_else(overflow)?;
        priced.push(line);
    }
    if total > MAX_TOTAL {
        return Err(overflow());
    }
    Ok((priced, total))
}

fn price_line(menu: &Menu, i: usize, request: &LineRequest) -> Result<Line, ApiError> {
    let item = menu.item(&request.item_id).ok_or_else(|| {
        refuse(
            "ITEM_NOT_FOUND",
            format!("items[{i}].itemId: no such item on the menu"),
        )
    })?;
    if !item.available {
        return Err(refuse(
            "ITEM_SOLD_OUT",
            format!("items[{i}]: {} is sold out", item.name),
        ));
    }
    if !(1..=MAX_QUANTITY).contains(&request.quantity) {
        return Err(refuse(
            "QUANTITY_OUT_OF_BOUNDS",
            format!("items[{i}].quantity: between 1 and {MAX_QUANTITY}"),
        ));
    }
    let mut chosen = Vec::new();
    for (j, option) in request.options.iter().enumerate() {
        let field = format!("items[{i}].options[{j}]");
        if !item.option_group_ids.contains(&option.group_id) {
            return Err(refuse(
                "OPTION_INVALID",
                format!("{field}.groupId: not an option of this item"),
            ));
        }
        if request.options[..j]
            .iter()
            .any(|o| o.group_id == option.group_id)
        {
            return Err(refuse(
                "OPTION_INVALID",
                format!("{field}.groupId: appears twice"),
            ));
        }
    }
    for group_id in &item.option_group_ids {
        let Some(group) = menu.group(group_id) else {
            continue;
        };
        let picked = request.options.iter().find(|o| &o.group_id == group_id);
        let field = format!("items[{i}].options[{group_id}]");
        // (value id, quantity) pairs, whatever the group's kind.
        let picks: Vec<(&str, u32)> = match (group.kind, picked) {
            (_, None) => Vec::new(),
            (OptionKind::Quantity, Some(p)) => {
                if !p.value_ids.is_empty() {
                    return Err(refuse(
                        "OPTION_INVALID",
                        format!("{field}: give quantities"),
                    ));
                }
                p.quantities
                    .iter()
                    .map(|q| (q.value_id.as_str(), q.quantity))
                    .collect()
            }
            (_, Some(p)) => {
                if !p.quantities.is_empty() {
                    return Err(refuse("OPTION_INVALID", format!("{field}: give valueIds")));
                }
                p.value_ids.iter().map(|v| (v.as_str(), 1)).collect()
            }
        };
        let mut count: u32 = 0;
        for (k, (value_id, quantity)) in picks.iter().enumerate() {
            let value = group
                .values
                .iter()
                .find(|v| v.id == *value_id)
                .ok_or_else(|| {
                    refuse(
                        "OPTION_INVALID",
                        format!("{field}: no such value {value_id}"),
                    )
                })?;
            if picks[..k].iter().any(|(v, _)| v == value_id) {
                return Err(refuse(
                    "OPTION_INVALID",
                    format!("{field}: {value_id} appears twice"),
                ));
            }
            if *quantity == 0 || *quantity > MAX_QUANTITY {
                return Err(refuse(
                    "QUANTITY_OUT_OF_BOUNDS",
                    format!("{field}: quantity between 1 and 99"),
                ));
            }
            count = count.saturating_add(*quantity);
            chosen.push(ChosenOption {
                group_id: group.id.clone(),
                value_id: value.id.clone(),
                name: value.name.clone(),
                price: value.price,
                quantity: *quantity,
            });
        }
        if count == 0 && group.required {
            return Err(refuse(
                "OPTION_REQUIRED",
                format!("{field}: choose from {}", group.name),
            ));
        }
        if count > 0 && (count < group.min || count > group.max) {
            return Err(refuse(
                "OPTION_RULES_BROKEN",
                format!("{field}: choose between {} and {}", group.min, group.max),
            ));
        }
    }
    let options_price = chosen.iter().try_fold(0i64, |sum, o| {
        o.price
            .checked_mul(i64::from(o.quantity))
            .and_then(|p| sum.checked_add(p))
    });
    let line_total = options_price
        .and_then(|o| o.checked_add(item.price))
        .and_then(|unit| unit.checked_mul(i64::from(request.quantity)))
        .ok_or_else(overflow)?;
    Ok(Line {
        item_id: item.id.clone(),
        name: item.name.clone(),
        unit_price: item.price,
        quantity: request.quantity,
        options: chosen,
        line_total,
    })
}

/// What the payment widget shows: the first item, and how many more lines.
pub fn order_name(lines: &[Line]) -> String {
    match lines {
        [] => String::new(),
        [only] => only.name.clone(),
        [first, rest @ ..] => format!("{} 외 {}건", first.name, rest.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::menus::{Category, MenuItem, OptionGroup, OptionValue};

    fn menu() -> Menu {
        let value = |id: &str, price| OptionValue {
            id: id.into(),
            name: id.into(),
            price,
        };
        let item = |id: &str, price, groups: &[&str], available| MenuItem {
            id: id.into(),
            category_id: "c".into(),
            name: id.into(),
            description: String::new(),
            price,
            available,
            image_key: None,
            option_group_ids: groups.iter().map(|g| g.to_string()).collect(),
            position: 0,
        };
        Menu {
            categories: vec![Category {
                id: "c".into(),
                name: "C".into(),
                position: 0,
            }],
            items: vec![
                item("kimbap", 3_500, &["size", "toppings"], true),
                item("latte", 4_500, &["shots"], true),
                item("soldout", 1_000, &[], false),
            ],
            option_groups: vec![
                OptionGroup {
                    id: "size".into(),
                    name: "Size".into(),
                    kind: OptionKind::SingleChoice,
                    required: true,
                    min: 1,
                    max: 1,
                    values: vec![value("regular", 0), value("large", 1_000)],
                },
                OptionGroup {
                    id: "toppings".into(),
                    name: "Toppings".into(),
                    kind: OptionKind::MultiChoice,
                    required: false,
                    min: 0,
                    max: 2,
                    values: vec![value("cheese", 500), value("tuna", 800), value("egg", 300)],
                },
                OptionGroup {
                    id: "shots".into(),
                    name: "Shots".into(),
                    kind: OptionKind::Quantity,
                    required: false,
                    min: 0,
                    max: 4,
                    values: vec![value("espresso", 600), value("decaf", 700)],
                },
            ],
        }
    }

    fn line(item: &str, quantity: u32, options: Vec<OptionRequest>) -> LineRequest {
        LineRequest {
            item_id: item.into(),
            quantity,
            options,
        }
    }

    fn pick(group: &str, values: &[&str]) -> OptionRequest {
        OptionRequest {
            group_id: group.into(),
            value_ids: values.iter().map(|v| v.to_string()).collect(),
            quantities: vec![],
        }
    }

    fn shots(values: &[(&str, u32)]) -> OptionRequest {
        OptionRequest {
            group_id: "shots".into(),
            value_ids: vec![],
            quantities: values
                .iter()
                .map(|(v, q)| ValueQuantity {
                    value_id: v.to_string(),
                    quantity: *q,
                })
                .collect(),
        }
    }

    #[test]
    fn totals_match_hand_computed_cases() {
        let cases: Vec<(Vec<LineRequest>, i64)> = vec![
            (
                vec![line("kimbap", 1, vec![pick("size", &["regular"])])],
                3_500,
            ),
            // (3,500 + 1,000 + 500 + 800) × 2 = 11,600
            (
                vec![line(
                    "kimbap",
                    2,
                    vec![
                        pick("size", &["large"]),
                        pick("toppings", &["cheese", "tuna"]),
                    ],
                )],
                11_600,
            ),
            // (4,500 + 2×600 + 1×700) × 3 = 19,200
            (
                vec![line(
                    "latte",
                    3,
                    vec![shots(&[("espresso", 2), ("decaf", 1)])],
                )],
                19_200,
            ),
            // 3,500 + (4,500) × 99 = 449,000
            (
                vec![
                    line("kimbap", 1, vec![pick("size", &["regular"])]),
                    line("latte", 99, vec![]),
                ],
                449_000,
            ),
        ];
        for (lines, expected) in cases {
            let (priced, total) = price(&menu(), &lines).unwrap();
            assert_eq!(total, expected);
            assert_eq!(priced.iter().map(|l| l.line_total).sum::<i64>(), expected);
        }
    }

    fn refusal(lines: Vec<LineRequest>) -> &'static str {
        price(&menu(), &lines).unwrap_err().code
    }

    #[test]
    fn every_refusal_has_its_code() {
        assert_eq!(refusal(vec![line("nope", 1, vec![])]), "ITEM_NOT_FOUND");
        assert_eq!(refusal(vec![line("soldout", 1, vec![])]), "ITEM_SOLD_OUT");
        assert_eq!(
            refusal(vec![line("latte", 0, vec![])]),
            "QUANTITY_OUT_OF_BOUNDS"
        );
        assert_eq!(
            refusal(vec![line("latte", 100, vec![])]),
            "QUANTITY_OUT_OF_BOUNDS"
        );
        assert_eq!(refusal(vec![line("kimbap", 1, vec![])]), "OPTION_REQUIRED");
        assert_eq!(
            refusal(vec![line("kimbap", 1, vec![pick("size", &["huge"])])]),
            "OPTION_INVALID"
        );
        assert_eq!(
            refusal(vec![line(
                "kimbap",
                1,
                vec![pick("size", &["regular", "large"])]
            )]),
            "OPTION_RULES_BROKEN"
        );
        assert_eq!(
            refusal(vec![line(
                "kimbap",
                1,
                vec![
                    pick("size", &["regular"]),
                    pick("toppings", &["cheese", "tuna", "egg"])
                ]
            )]),
            "OPTION_RULES_BROKEN"
        );
        assert_eq!(
            refusal(vec![line("latte", 1, vec![pick("size", &["regular"])])]),
            "OPTION_INVALID"
        );
        assert_eq!(
            refusal(vec![line("latte", 1, vec![shots(&[("espresso", 5)])])]),
            "OPTION_RULES_BROKEN"
        );
        assert_eq!(
            refusal(vec![line("latte", 1, vec![shots(&[("espresso", 0)])])]),
            "QUANTITY_OUT_OF_BOUNDS"
        );
        assert_eq!(
            refusal(vec![line("latte", 1, vec![pick("shots", &["espresso"])])]),
            "OPTION_INVALID"
        );
        assert_eq!(refusal(vec![]), "VALIDATION_FAILED");
    }

    #[test]
    fn order_names_follow_the_korean_convention() {
        let (lines, _) = price(
            &menu(),
            &[line("latte", 1, vec![]), line("latte", 2, vec![])],
        )
        .unwrap();
        assert_eq!(order_name(&lines), "latte 외 1건");
        assert_eq!(order_name(&lines[..1]), "latte");
    }
}
